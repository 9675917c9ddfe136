"""Generate a synthetic Cityscapes (procedural road scenes) in the exact Cityscapes layout, with split lists.

Example:
    python scripts/make_synthetic_cityscapes.py --output_dir data/synthetic_cityscapes --num_train 100
"""

from __future__ import annotations

import argparse
import time

from dataset_builders.cityscapes.synthetic import make_synthetic_cityscapes

from .arguments import add_synthetic_split_arguments, non_negative_int
from .runner import entry_point


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True, help="Root to write leftImg8bit/, gtFine/ and lists/ into.")
    add_synthetic_split_arguments(parser)
    parser.add_argument("--height", type=non_negative_int, default=256, help="Image height (default: 256).")
    parser.add_argument("--width", type=non_negative_int, default=512, help="Image width (default: 512).")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    counts = make_synthetic_cityscapes(
        args.output_dir, args.num_train, args.num_val, args.num_test, args.height, args.width, args.seed
    )
    summary = ", ".join(f"{name}: {count}" for name, count in counts.items())
    print(f"wrote a synthetic Cityscapes to {args.output_dir} in {time.perf_counter() - start:.1f}s ({summary})")


cli = entry_point(main)


if __name__ == "__main__":
    cli()
