"""Throughput of the training data pipeline, per DataLoader worker and through a DataLoader.

Writes a synthetic Cityscapes at full resolution (noise-textured 2048x1024 PNGs of about 4.6 MB, as real photos
compress), prepares it with the Cityscapes builder, and times in one run: the original DDRNet code's pipeline
(cv2 decode and resize, float32) and this one (libspng, crop before resize, uint8) on the PNG files, this one on
the bytes the builder stores for training (uncompressed PNGs), its decoding alone, then DataLoaders with 1 and 2
workers feeding a consumer that only touches the batch. These are also `scripts/benchmark.py`'s data rows.

Example:
    python scripts/benchmark_data.py --num_images 8 --height 1024 --width 2048 --crop 1024
"""

from __future__ import annotations

import argparse

from ..benchmarking.data_pipeline import measure_data_pipeline
from ..benchmarking.timing import markdown_table
from .runner import entry_point


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_images", type=int, default=8)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--crop", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3, help="Passes over the images; each row keeps its best.")
    parser.add_argument("--batch_size", type=int, default=4, help="DataLoader batch size.")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="DataLoader worker counts.")
    args = parser.parse_args(argv)
    rows = measure_data_pipeline(
        args.num_images, args.height, args.width, args.crop, args.rounds, args.batch_size, tuple(args.workers)
    )
    print(markdown_table(rows))
    return 0


cli = entry_point(main)


if __name__ == "__main__":
    cli()
