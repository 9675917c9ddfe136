#!/usr/bin/env python
"""Publish a trained DDRNet to a local hub folder: <hub_dir>/<ORG>/<NAME>/ with the weights (safetensors), configs,

The command lives in `ddrnet_toolkit.commands.push_to_hub`
(`ddrnet-push-to-hub` once installed); `--help` describes it.
"""

from ddrnet_toolkit.commands.push_to_hub import cli

if __name__ == "__main__":
    cli()
