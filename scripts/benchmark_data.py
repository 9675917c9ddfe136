#!/usr/bin/env python
"""Throughput of the training data pipeline: PNG decoding plus the original augmentation, per DataLoader worker.

Generates a few synthetic Cityscapes images at full resolution (2048x1024 by default) and times, in one process,
decoding alone and decoding plus scale/crop/flip/normalize. A DataLoader with N workers scales the figure by about
min(N, free cores).

Example:
    python scripts/benchmark_data.py --num_images 8 --height 1024 --width 2048
"""

from __future__ import annotations

import argparse

from ddrnet_toolkit.benchmarking import markdown_table, measure_data_pipeline
from ddrnet_toolkit.cli import run_script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_images", type=int, default=8)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--crop", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2, help="Passes over the images per measurement.")
    args = parser.parse_args()
    print(markdown_table(measure_data_pipeline(args.num_images, args.height, args.width, args.crop, args.rounds)))


if __name__ == "__main__":
    run_script(main)
