"""Generate a synthetic dataset that is not Cityscapes: 6 classes (background 0, road, lane_marking, vehicle,
pedestrian, sign) with their own names and colours, images of varying sizes, written three ways:

  <output_dir>/split_files/   images/, labels/, lists/*.lst and labels.json (train.py --data_dir --labels_file)
  <output_dir>/save_to_disk/  a DatasetDict with columns pixel_image and mask (train.py --dataset_name
                              --image_column pixel_image --label_column mask --labels_file ...)
  <output_dir>/parquet/       the same rows as parquet files

Example:
    python scripts/make_synthetic_custom.py --output_dir data/synthetic_custom --num_train 100
"""

from __future__ import annotations

import argparse

from dataset_builders.synthetic_custom import make_synthetic_custom

from .arguments import add_synthetic_split_arguments
from .runner import entry_point


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True, help="Folder to write the three layouts into.")
    add_synthetic_split_arguments(parser)
    args = parser.parse_args(argv)
    paths = make_synthetic_custom(args.output_dir, args.num_train, args.num_val, args.num_test, args.seed)
    print(f"split files: {paths.split_files} (labels file {paths.labels_file})")
    print(f"save_to_disk: {paths.save_to_disk}\nparquet: {paths.parquet}")
    return 0


cli = entry_point(main)


if __name__ == "__main__":
    cli()
