#!/usr/bin/env python
"""Speed report: inference per variant and mode, training steps, the data pipeline and the metric, in one run.

The command lives in `ddrnet_toolkit.commands.benchmark`
(`ddrnet-benchmark` once installed); `--help` describes it.
"""

from ddrnet_toolkit.commands.benchmark import cli

if __name__ == "__main__":
    cli()
