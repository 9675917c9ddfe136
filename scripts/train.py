#!/usr/bin/env python
"""Train DDRNet for semantic segmentation on Cityscapes (or the synthetic Cityscapes) with accelerate.

The command lives in `ddrnet_toolkit.commands.train`
(`ddrnet-train` once installed); `--help` describes it.
"""

from ddrnet_toolkit.commands.train import cli

if __name__ == "__main__":
    cli()
