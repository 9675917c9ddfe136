#!/usr/bin/env python
"""Throughput of the training data pipeline, per DataLoader worker and through a DataLoader.

The command lives in `ddrnet_toolkit.commands.benchmark_data`
(`ddrnet-benchmark-data` once installed); `--help` describes it.
"""

from ddrnet_toolkit.commands.benchmark_data import cli

if __name__ == "__main__":
    cli()
