#!/usr/bin/env python
"""Write the split files (train.lst, val.lst, test.lst, trainval.lst) for a Cityscapes download.

The command lives in `ddrnet_toolkit.commands.make_lists`
(`ddrnet-make-lists` once installed); `--help` describes it.
"""

from ddrnet_toolkit.commands.make_lists import cli

if __name__ == "__main__":
    cli()
