"""Write the split files (train.lst, val.lst, test.lst, trainval.lst) of a dataset folder.

Two layouts are recognised (`--layout auto` tells them apart):
  cityscapes  leftImg8bit/ and gtFine/ as unpacked from leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip
              (the standard split gives 2975 train, 500 val and 1525 test images)
  paired      an image folder and an annotation folder per split, found by their usual names (train/ +
              trainannot/ as CamVid's SegNet copy, images/training/ + annotations/training/ as ADE20K, ...) or
              given with --split; images and annotations are paired by file stem. A split without annotations
              (a test split) is listed without labels.
Paths are written relative to --data_dir. Lists that already exist with other lines are replaced only with
--overwrite.

Examples:
    python scripts/make_lists.py --data_dir /data/cityscapes
    python scripts/make_lists.py --data_dir data/CamVid          # 367 train, 101 val, 233 test
    python scripts/make_lists.py --data_dir /data/mine --split train imgs/tr masks/tr --split val imgs/va masks/va
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dataset_builders.cityscapes import write_split_lists
from dataset_builders.split_files.paired_folders import SPLIT_FOLDER_NAMES, write_paired_lists

from .runner import entry_point

SPLITS = {name: split for split, names in SPLIT_FOLDER_NAMES.items() for name in names}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="The dataset's root folder.")
    parser.add_argument("--list_dir", default=None, help="Where to write the lists (default: <data_dir>/lists).")
    parser.add_argument("--layout", choices=("auto", "cityscapes", "paired"), default="auto")
    parser.add_argument(
        "--split",
        nargs="+",
        action="append",
        metavar=("SPLIT IMAGES", "LABELS"),
        help="A split's image folder and annotation folder, relative to --data_dir (paired layout; repeat per "
        "split; a test split may have no annotation folder). SPLIT: train, val or test.",
    )
    parser.add_argument("--overwrite", action="store_true", help="Replace lists that exist with other lines.")
    args = parser.parse_args(argv)
    if args.split and args.layout == "cityscapes":
        parser.error("--split names folders of the paired layout, not of Cityscapes")
    args.folders = None
    if args.split:
        args.folders = {}
        for values in args.split:
            if len(values) not in (2, 3) or values[0] not in SPLITS:
                choices = ", ".join(SPLITS)
                parser.error(f"--split {' '.join(values)}: expected SPLIT IMAGES [LABELS], SPLIT one of {choices}")
            images, *labels = (Path(args.data_dir) / value for value in values[1:])
            args.folders[SPLITS[values[0]]] = (images, labels[0] if labels else None)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    layout = args.layout
    if layout == "auto":
        layout = "cityscapes" if (Path(args.data_dir) / "leftImg8bit").is_dir() and not args.folders else "paired"
    if layout == "cityscapes":
        counts = write_split_lists(args.data_dir, args.list_dir, args.overwrite)
    else:
        counts = write_paired_lists(args.data_dir, args.list_dir, args.folders, args.overwrite)
    for name, count in counts.items():
        print(f"{name}: {count} samples")
    return 0


cli = entry_point(main)

if __name__ == "__main__":
    cli()
