#!/usr/bin/env python
"""Generate a synthetic Cityscapes (procedural road scenes) in the exact Cityscapes layout, with split lists.

The command lives in `ddrnet_toolkit.commands.make_synthetic_cityscapes`
(`ddrnet-make-synthetic-cityscapes` once installed); `--help` describes it.
"""

from ddrnet_toolkit.commands.make_synthetic_cityscapes import cli

if __name__ == "__main__":
    cli()
