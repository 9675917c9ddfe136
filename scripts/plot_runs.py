#!/usr/bin/env python
"""Draw the training curves of runs side by side from their TensorBoard logs.

The command lives in `ddrnet_toolkit.commands.plot_runs`
(`ddrnet-plot-runs` once installed); `--help` describes it.
"""

from ddrnet_toolkit.commands.plot_runs import cli

if __name__ == "__main__":
    cli()
