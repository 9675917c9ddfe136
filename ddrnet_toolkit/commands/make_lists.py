"""Write the split files (train.lst, val.lst, test.lst, trainval.lst) for a Cityscapes download.

The root must hold leftImg8bit/ and gtFine/ as unpacked from leftImg8bit_trainvaltest.zip and
gtFine_trainvaltest.zip. The standard split gives 2975 train, 500 val and 1525 test images.

Example:
    python scripts/make_lists.py --data_dir /data/cityscapes
"""

from __future__ import annotations

import argparse

from dataset_builders.cityscapes import write_split_lists

from .runner import entry_point


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="Cityscapes root (with leftImg8bit/ and gtFine/).")
    parser.add_argument("--list_dir", default=None, help="Where to write the lists (default: <data_dir>/lists).")
    args = parser.parse_args(argv)
    counts = write_split_lists(args.data_dir, args.list_dir)
    for name, count in counts.items():
        print(f"{name}: {count} samples")
    return 0


cli = entry_point(main)


if __name__ == "__main__":
    cli()
