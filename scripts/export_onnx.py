#!/usr/bin/env python
"""Export a DDRNet model to ONNX (opset 17+, dynamic batch and image size) and check it with onnxruntime.

The command lives in `ddrnet_toolkit.commands.export_onnx`
(`ddrnet-export-onnx` once installed); `--help` describes it.
"""

from ddrnet_toolkit.commands.export_onnx import cli

if __name__ == "__main__":
    cli()
