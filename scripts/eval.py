#!/usr/bin/env python
"""Score a DDRNet checkpoint on a labelled split: mean IoU, accuracies and a per-class IoU table.

The command lives in `ddrnet_toolkit.commands.eval`
(`ddrnet-eval` once installed); `--help` describes it.
"""

from ddrnet_toolkit.commands.eval import cli

if __name__ == "__main__":
    cli()
