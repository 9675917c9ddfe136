"""The dataset a run reads: its splits, its classes and the name results and model cards give it.

Three ways in, all ending in `image`/`label` splits (train, validation, test) whose labels are class ids:
1. a data folder without a labels file: Cityscapes through its `.lst` split files;
2. a data folder with a labels file: any dataset described by `.lst` split files of `<image> <label>` lines;
3. a dataset name: a `save_to_disk` folder, a folder of parquet files, or a Hub dataset name (online), with the
   columns that hold the images and labels and a labels file for its classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets

from dataset_builders.cityscapes import load_cityscapes
from dataset_builders.image_label_datasets import load_image_label_dataset
from dataset_builders.label_space import LabelSpace
from dataset_builders.split_files import load_split_files

from ..errors import UserInputError


@dataclass
class SelectedDataset:
    splits: datasets.DatasetDict
    label_space: LabelSpace
    name: str  # shown in results and model cards

    @property
    def is_cityscapes(self) -> bool:
        return self.label_space.fingerprint == LabelSpace.cityscapes().fingerprint

    @property
    def labelled_splits(self) -> list[str]:
        return [name for name, split in self.splits.items() if "label" in split.column_names]

    def split(self, name: str, labelled: bool = False, what: str = "split") -> datasets.Dataset:
        """The split `name` (with labels, when `labelled`), or a `UserInputError` starting with `what` and the name
        that lists the splits to choose from."""
        if name not in self.splits:
            raise UserInputError(f"{what} {name} is not a split of {self.name}; choose from {', '.join(self.splits)}")
        if labelled and name not in self.labelled_splits:
            raise UserInputError(
                f"{what} {name} is not a labelled split of {self.name}; choose from {', '.join(self.labelled_splits)}"
            )
        return self.splits[name]


def load_dataset(
    *,
    data_dir: str | Path | None = None,
    dataset_name: str | None = None,
    labels_file: str | Path | None = None,
    list_dir: str | Path | None = None,
    dataset_config_name: str | None = None,
    image_column: str = "image",
    label_column: str = "label",
    reduce_labels: bool = False,
    cache_dir: str | Path | None = None,
    display_name: str | None = None,
    num_proc: int | None = None,
    image_storage: str = "uncompressed",
) -> SelectedDataset:
    """The splits and classes of one of the three ways in (see the module docstring): `data_dir` or
    `dataset_name`, with `labels_file` for every dataset but Cityscapes. A `data_dir` is prepared by `num_proc`
    processes, its training images stored as `image_storage` (`dataset_builders.split_files.IMAGE_STORAGES`); a
    `dataset_name` is read as it is stored."""
    if labels_file is None:
        splits = load_cityscapes(data_dir, list_dir, cache_dir, num_proc, image_storage)
        return SelectedDataset(splits, LabelSpace.cityscapes(), display_name or "cityscapes")
    label_space = LabelSpace.from_labels_file(labels_file, reduce_labels=reduce_labels)
    if data_dir is not None:
        splits = load_split_files(data_dir, label_space, list_dir, cache_dir, num_proc, image_storage)
        name = Path(data_dir).resolve().name
    else:
        splits = load_image_label_dataset(
            dataset_name,
            label_space,
            config_name=dataset_config_name,
            image_column=image_column,
            label_column=label_column,
            cache_dir=cache_dir,
        )
        name = Path(dataset_name).name if Path(dataset_name).exists() else dataset_name
    return SelectedDataset(splits, label_space, display_name or name)
