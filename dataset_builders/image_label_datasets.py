"""Image/label datasets that are already `datasets` tables: a `save_to_disk` folder, parquet files, or a Hub dataset.

`load_image_label_dataset` ends where the builders end: splits `train`, `validation`, `test` with the columns
`image`, `label` (class ids 0..N-1 and the ignore value) and `name`. What differs is when labels are encoded: the
builders encode once at preparation; here the stored values are encoded lazily, by a format transform, each time
a row is read, so nothing is written next to the user's data and nothing is converted ahead of training. An
invalid stored value therefore raises `DatasetError` when its row is read, naming the split, the row and the
values.

Local folders, in the order they are tried:

- `dataset_dict.json` inside: a `DatasetDict` written by `save_to_disk`;
- parquet files, `<split>-*.parquet` or `<split>.parquet` in the folder (the Hub's `data/` layout: point at
  `data/`), or `<split>/*.parquet` (one folder per split); the two layouts cannot be mixed.

Anything else that is not an existing path is taken as a Hub dataset name (with `config_name`), which needs the
network: offline it raises `DatasetError`. Split names are normalised (`val`, `valid` -> `validation`); other splits
are left out. A test split may have no label column.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import datasets
import pyarrow
from PIL import Image

from .errors import DatasetError, first_line
from .image_files import check_image_mode, label_array
from .label_space import LabelSpace

SPLIT_NAMES = {"train": "train", "validation": "validation", "val": "validation", "valid": "validation", "test": "test"}
LOAD_ERRORS = (OSError, ValueError, datasets.exceptions.DatasetsError)


class EncodeLabels:
    """Format transform: checks each row's image and label and encodes the label to class ids.

    A class rather than a closure so that the dataset pickles into data-loader workers.
    """

    def __init__(self, label_space: LabelSpace, where: str):
        self.label_space = label_space
        self.where = where  # "<dataset> split 'val'", for error messages

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        # datasets gives a custom transform every column, even for a column read (`split["label"]`).
        rows = [f"{self.where} row {int(name)}" for name in batch["name"]]
        for image, row in zip(batch["image"], rows, strict=True):
            if image is None:
                raise DatasetError(f"{row}: the image is missing (null)")
            check_image_mode(image.mode, f"{row}: image")
        if "label" in batch:
            batch["label"] = [
                self.encode(label, image, row)
                for label, image, row in zip(batch["label"], batch["image"], rows, strict=True)
            ]
        return batch

    def encode(self, label: Image.Image | None, image: Image.Image, row: str) -> Image.Image:
        if label is None:
            raise DatasetError(f"{row}: the label is missing (null)")
        stored = label_array(label, f"{row}: label")
        if stored.shape != (image.height, image.width):
            raise DatasetError(
                f"{row}: image is {image.width}x{image.height} but label is {stored.shape[1]}x{stored.shape[0]} "
                "(width x height)"
            )
        return Image.fromarray(self.label_space.encode(stored, f"{row}: label"))


def parquet_files(folder: Path) -> dict[str, list[str]]:
    """Parquet files by split name, from `<split>-*.parquet` / `<split>.parquet` or `<split>/*.parquet`."""
    flat: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.parquet")):
        flat.setdefault(path.stem.split("-")[0], []).append(str(path))
    nested = {
        path.name: [str(p) for p in sorted(path.glob("*.parquet"))]
        for path in sorted(folder.iterdir())
        if path.is_dir() and any(path.glob("*.parquet"))
    }
    if flat and nested:
        raise DatasetError(
            f"{folder} holds parquet files both as <split>-*.parquet ({sorted(flat)}) and in split folders "
            f"({sorted(nested)}); keep one layout"
        )
    return flat or nested


def read_local(folder: Path, cache_dir: str | None) -> datasets.DatasetDict:
    if (folder / "dataset_dict.json").is_file():
        try:
            return datasets.load_from_disk(str(folder))
        except (*LOAD_ERRORS, KeyError, TypeError, pyarrow.ArrowException) as error:
            raise DatasetError(f"{folder} cannot be read as a save_to_disk dataset: {first_line(error)}") from error
    if (folder / "state.json").is_file():
        raise DatasetError(
            f"{folder} holds a single Dataset written by save_to_disk; save a DatasetDict with train/validation splits"
        )
    files = parquet_files(folder)
    if not files:
        present = sorted(path.name for path in folder.iterdir())[:10]
        raise DatasetError(
            f"{folder} holds neither dataset_dict.json (a DatasetDict written by save_to_disk) nor parquet files "
            f"(<split>-*.parquet or <split>/*.parquet); it holds {present}"
        )
    splits = datasets.DatasetDict()
    for split, split_files in files.items():  # one at a time: a test split may lack the label column
        try:
            splits[split] = datasets.load_dataset(
                "parquet", data_files={split: split_files}, split=split, cache_dir=cache_dir
            )
        except LOAD_ERRORS as error:
            raise DatasetError(
                f"cannot read the parquet files of split {split!r} in {folder}: {error.__cause__ or error}"
            ) from error
    return splits


def read_hub(name: str, config_name: str | None, cache_dir: str | None) -> datasets.DatasetDict:
    try:
        splits = datasets.load_dataset(name, config_name, cache_dir=cache_dir)
    except LOAD_ERRORS as error:
        offline = [
            var for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if os.environ.get(var, "0") not in ("", "0")
        ]
        hint = f" ({' and '.join(offline)} set: the Hub cannot be reached)" if offline else ""
        raise DatasetError(
            f"cannot load {name!r} from the Hub{hint}: {error}; for a local dataset give an existing folder"
        ) from error
    if not isinstance(splits, datasets.DatasetDict):
        raise DatasetError(f"{name!r} loaded as {type(splits).__name__}, not a DatasetDict of splits")
    return splits


def normalise_splits(splits: datasets.DatasetDict, source: str) -> dict[str, tuple[str, datasets.Dataset]]:
    """train / validation / test -> (the stored split name, its dataset); other splits are left out."""
    found: dict[str, tuple[str, datasets.Dataset]] = {}
    for stored, dataset in splits.items():
        split = SPLIT_NAMES.get(stored.lower())
        if split is None:
            continue
        if split in found:
            raise DatasetError(f"{source}: splits {found[split][0]!r} and {stored!r} both name the {split} split")
        found[split] = (stored, dataset)
    if "train" not in found and "validation" not in found:
        raise DatasetError(
            f"{source}: no train or validation split (validation may be named val or valid); "
            f"splits present: {sorted(splits)}"
        )
    return found


def check_column(dataset: datasets.Dataset, column: str, role: str, where: str) -> None:
    if column not in dataset.column_names:
        raise DatasetError(f"{where} has no {role} column {column!r}; columns present: {dataset.column_names}")
    feature = dataset.features[column]
    if not isinstance(feature, datasets.Image):
        raise DatasetError(f"{where}: the {role} column {column!r} is {feature}, not an image")


def prepare_split(
    dataset: datasets.Dataset,
    where: str,
    label_space: LabelSpace,
    image_column: str,
    label_column: str,
    label_required: bool,
) -> datasets.Dataset:
    """Select and rename the columns, add `name` (the row index, six digits) and the encoding transform."""
    check_column(dataset, image_column, "image", where)
    columns = {image_column: "image"}
    if label_required or label_column in dataset.column_names:
        check_column(dataset, label_column, "label", where)
        columns[label_column] = "label"
    for column in columns:
        missing = dataset.data.column(column).null_count
        if missing:
            raise DatasetError(f"{where}: {missing} of its {len(dataset)} rows have no {column} (null)")
    dataset = dataset.select_columns(list(columns)).rename_columns(columns)
    for column in columns.values():
        if not dataset.features[column].decode:  # the transform needs PIL images, not {"bytes", "path"} dicts
            dataset = dataset.cast_column(column, datasets.Image(decode=True))
    # In memory beside the memory-mapped table: no cache file is written (the user's folder stays untouched).
    dataset = dataset.add_column("name", [f"{index:06d}" for index in range(len(dataset))])
    return dataset.with_transform(EncodeLabels(label_space, where))


def load_image_label_dataset(
    name_or_path: str | os.PathLike,
    label_space: LabelSpace,
    config_name: str | None = None,
    image_column: str = "image",
    label_column: str = "label",
    cache_dir: str | os.PathLike | None = None,
) -> datasets.DatasetDict:
    """A `save_to_disk` folder, a parquet folder or a Hub dataset as splits of `image`, `label` (class ids), `name`.

    `label` is absent from a test split that has no label column. `cache_dir` receives what `datasets` converts
    (parquet, Hub downloads); nothing is written into a local folder. See the module docstring for the layouts.
    """
    cache = None if cache_dir is None else str(cache_dir)
    path = Path(name_or_path)
    if path.exists():
        if not path.is_dir():
            raise DatasetError(f"{path} is a file; give a folder (save_to_disk or parquet files) or a Hub dataset name")
        if config_name is not None:
            raise DatasetError(f"config_name {config_name!r} applies to Hub datasets only, not to the folder {path}")
        source, splits = str(path), read_local(path, cache)
    elif str(name_or_path).startswith(("/", ".", "~")) or str(name_or_path).count("/") > 1:
        raise DatasetError(f"dataset folder not found: {path}")
    else:
        source = str(name_or_path) + (f" ({config_name})" if config_name else "")
        splits = read_hub(str(name_or_path), config_name, cache)
    prepared = datasets.DatasetDict()
    found = normalise_splits(splits, source)
    for split in sorted(found, key=["train", "validation", "test"].index):
        stored, dataset = found[split]
        where = f"{source} split {stored!r}"
        prepared[split] = prepare_split(dataset, where, label_space, image_column, label_column, split != "test")
    return prepared
