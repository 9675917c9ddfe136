#!/usr/bin/env python
"""Convert an original DDRNet checkpoint (`.pth`) into a Hugging Face model folder.

The command lives in `ddrnet_toolkit.commands.convert_original_checkpoint`
(`ddrnet-convert-original-checkpoint` once installed); `--help` describes it.
"""

from ddrnet_toolkit.commands.convert_original_checkpoint import cli

if __name__ == "__main__":
    cli()
