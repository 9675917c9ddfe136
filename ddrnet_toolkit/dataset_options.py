"""The data options shared by train.py, eval.py and predict.py, and the dataset they select.

Three ways in, all ending in `image`/`label` splits (train, validation, test) whose labels are class ids:
1. `--data_dir` without `--labels_file`: Cityscapes through its `.lst` split files;
2. `--data_dir` with `--labels_file`: any dataset described by `.lst` split files of `<image> <label>` lines;
3. `--dataset_name`: a `save_to_disk` folder, a folder of parquet files, or a Hub dataset name (online), with
   `--image_column`/`--label_column` naming its columns and `--labels_file` its classes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import datasets

from dataset_builders.cityscapes import load_cityscapes
from dataset_builders.image_label_datasets import load_image_label_dataset
from dataset_builders.label_space import LabelSpace
from dataset_builders.split_files import load_split_files


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data (one of --data_dir or --dataset_name)")
    group.add_argument("--data_dir", default=None, help="Root of a dataset with .lst split files (Cityscapes: as is).")
    group.add_argument("--list_dir", default=None, help="Folder of the .lst split files (default: <data_dir>/lists).")
    group.add_argument(
        "--dataset_name", default=None, help="A save_to_disk folder, a folder of parquet files, or a Hub dataset."
    )
    group.add_argument("--dataset_config_name", default=None, help="Configuration of a Hub dataset.")
    group.add_argument("--image_column", default="image", help="Image column of --dataset_name (default: image).")
    group.add_argument("--label_column", default="label", help="Label column of --dataset_name (default: label).")
    group.add_argument(
        "--labels_file",
        default=None,
        help="JSON classes file: {id: name}, or {id2label, colors, ignore_index, label_map}. Required for every "
        "dataset but Cityscapes.",
    )
    group.add_argument(
        "--reduce_labels", action="store_true", help="Stored 0 is background to ignore; other values shift down by 1."
    )
    group.add_argument("--cache_dir", default=None, help="datasets cache folder.")
    group.add_argument(
        "--dataset_display_name", default=None, help="Name in results and model cards (default: from the data)."
    )


def check_dataset_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if (args.data_dir is None) == (args.dataset_name is None):
        parser.error("give exactly one of --data_dir (split files) or --dataset_name (a datasets dataset)")
    if args.dataset_name is not None and args.labels_file is None:
        parser.error("--dataset_name needs --labels_file: the classes of a dataset other than Cityscapes")
    if args.reduce_labels and args.labels_file is None:
        parser.error("--reduce_labels needs --labels_file (Cityscapes labels are converted by its own table)")


@dataclass
class SelectedDataset:
    splits: datasets.DatasetDict
    label_space: LabelSpace
    name: str  # shown in results and model cards

    @property
    def is_cityscapes(self) -> bool:
        return self.label_space.fingerprint == LabelSpace.cityscapes().fingerprint


def load_dataset_from_arguments(args: argparse.Namespace) -> SelectedDataset:
    """The splits and classes the data options select (see the module docstring)."""
    if args.labels_file is None:
        splits = load_cityscapes(args.data_dir, args.list_dir, args.cache_dir)
        return SelectedDataset(splits, LabelSpace.cityscapes(), args.dataset_display_name or "cityscapes")
    label_space = LabelSpace.from_labels_file(args.labels_file, reduce_labels=args.reduce_labels)
    if args.data_dir is not None:
        splits = load_split_files(args.data_dir, label_space, args.list_dir, args.cache_dir)
        name = Path(args.data_dir).resolve().name
    else:
        splits = load_image_label_dataset(
            args.dataset_name,
            label_space,
            config_name=args.dataset_config_name,
            image_column=args.image_column,
            label_column=args.label_column,
            cache_dir=args.cache_dir,
        )
        name = Path(args.dataset_name).name if Path(args.dataset_name).exists() else args.dataset_name
    return SelectedDataset(splits, label_space, args.dataset_display_name or name)
