#!/usr/bin/env python
"""Segment images, image sequences and videos with a DDRNet model; write colour masks, overlays and/or label maps.

The command lives in `ddrnet_toolkit.commands.predict`
(`ddrnet-predict` once installed); `--help` describes it.
"""

from ddrnet_toolkit.commands.predict import cli

if __name__ == "__main__":
    cli()
