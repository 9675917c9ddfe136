#!/usr/bin/env python
"""Export a DDRNet model to an OpenVINO IR (fp32, and int8 through NNCF with --int8) and check it with OpenVINO.

The command lives in `ddrnet_toolkit.commands.export_openvino`
(`ddrnet-export-openvino` once installed); `--help` describes it.
"""

from ddrnet_toolkit.commands.export_openvino import cli

if __name__ == "__main__":
    cli()
