"""Throughput of the training data pipeline, per DataLoader worker and through a DataLoader.

Writes a synthetic Cityscapes at full resolution (noise-textured 2048x1024 PNGs of about 4.6 MB, as real photos
compress), prepares it with the Cityscapes builder, and times in one run: the original DDRNet code's pipeline
(cv2 decode and resize, float32) and this one (libspng, crop before resize, uint8) on the PNG files, this one on
the bytes the builder stores for training (uncompressed PNGs), its decoding alone, then DataLoaders with 1 and 2
workers feeding a consumer that only touches the batch. These are also `scripts/benchmark.py`'s data rows.
With --data_dir, the pipeline and its decoding run on that dataset's training images instead, beside a synthetic
Cityscapes of the same image size (what real photos change).

Examples:
    python scripts/benchmark_data.py --num_images 8 --height 1024 --width 2048 --crop 1024
    python scripts/benchmark_data.py --data_dir data/CamVid --labels_file configs/labels/camvid.json --crop 352
"""

from __future__ import annotations

import argparse

from ..benchmarking.data_pipeline import measure_against_synthetic, measure_data_pipeline
from ..benchmarking.timing import markdown_table
from ..data.selection import load_dataset
from .arguments import data_folder
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
    real = parser.add_argument_group("a dataset of your own, beside a synthetic one of its image size")
    real.add_argument("--data_dir", default=None, help="Split files of a dataset (with --labels_file).")
    real.add_argument("--labels_file", default=None, help="Its classes file.")
    real.add_argument("--cache_dir", default=None, help="datasets cache folder.")
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        data_dir = data_folder(args.data_dir, "--data_dir")
        dataset = load_dataset(data_dir=data_dir, labels_file=args.labels_file, cache_dir=args.cache_dir)
        split = dataset.split("train", labelled=True, what="--data_dir's split")
        rows = measure_against_synthetic(split, dataset.name, args.crop, args.num_images, args.rounds)
    else:
        rows = measure_data_pipeline(
            args.num_images, args.height, args.width, args.crop, args.rounds, args.batch_size, tuple(args.workers)
        )
    print(markdown_table(rows))
    return 0


cli = entry_point(main)


if __name__ == "__main__":
    cli()
