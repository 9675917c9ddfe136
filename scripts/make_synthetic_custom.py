#!/usr/bin/env python
"""Generate a synthetic dataset that is not Cityscapes: 6 classes (background 0, road, lane_marking, vehicle,

The command lives in `ddrnet_toolkit.commands.make_synthetic_custom`
(`ddrnet-make-synthetic-custom` once installed); `--help` describes it.
"""

from ddrnet_toolkit.commands.make_synthetic_custom import cli

if __name__ == "__main__":
    cli()
