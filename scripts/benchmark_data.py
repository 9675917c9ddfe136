#!/usr/bin/env python
"""Throughput of the training data pipeline: PNG decoding plus the original augmentation, per worker.

Generates a few synthetic Cityscapes images at full resolution (2048x1024 by default), then times, in one
process: decoding alone, and decoding plus scale/crop/flip/normalize at the default 1024x1024 crop. A DataLoader
with several workers scales this figure by about the number of free cores.

Example:
    python scripts/benchmark_data.py --num_images 8 --height 1024 --width 2048
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from dataset_builders.cityscapes import load_cityscapes
from dataset_builders.cityscapes.synthetic import make_synthetic_cityscapes
from modeling_ddrnet.data import TrainAugmentation, TrainDataset


def measure_data_pipeline(
    num_images: int = 8, height: int = 1024, width: int = 2048, crop: int = 1024, rounds: int = 2
) -> list[dict]:
    """Images per second for decoding alone and for decoding plus augmentation, in one process."""
    with tempfile.TemporaryDirectory() as tmp:
        make_synthetic_cityscapes(tmp, num_train=num_images, num_val=0, num_test=0, height=height, width=width)
        split = load_cityscapes(tmp, cache_dir=f"{tmp}/cache")["train"]
        dataset = TrainDataset(split, TrainAugmentation(crop_size=(crop, crop), base_size=max(height, width)))
        rows = []
        for name, step in (
            ("decode (PIL)", lambda i: (np.asarray(split[i % num_images]["image"]), split[i % num_images]["label"])),
            (f"decode + augment ({crop}x{crop} crop)", lambda i: dataset[i]),
        ):
            step(0)
            start = time.perf_counter()
            count = rounds * num_images
            for index in range(count):
                step(index)
            elapsed = time.perf_counter() - start
            rows.append(
                {"stage": name, "images_per_second_per_worker": count / elapsed, "resolution": f"{width}x{height}"}
            )
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_images", type=int, default=8)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--crop", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2, help="Passes over the images per measurement.")
    args = parser.parse_args()
    rows = measure_data_pipeline(args.num_images, args.height, args.width, args.crop, args.rounds)
    print(f"| stage | images/s per worker ({rows[0]['resolution']}) |\n|---|---|")
    for row in rows:
        print(f"| {row['stage']} | {row['images_per_second_per_worker']:.2f} |")


if __name__ == "__main__":
    main()
