"""Cityscapes' split files: the Cityscapes naming, the error type, and writing the lists for a Cityscapes tree.

The `.lst` format itself is parsed by `dataset_builders.split_lists`, which the generic split-file builder shares.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetError
from ..split_lists import SPLIT_FILES, Sample
from ..split_lists import read_split_file as read_any_split_file

IMAGE_SPLITS = {"train": "train", "validation": "val", "test": "test"}
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


class CityscapesDataError(DatasetError):
    """Bad Cityscapes input; the message names the file (and line) at fault."""


def read_split_file(path: Path, data_dir: Path, with_labels: bool) -> list[Sample]:
    """Parse a split file and check that every file it names exists; raises `CityscapesDataError`."""
    return read_any_split_file(path, data_dir, with_labels, error=CityscapesDataError)


def write_split_lists(data_dir: str | Path, list_dir: str | Path | None = None) -> dict[str, int]:
    """Write the split files for a Cityscapes tree (`leftImg8bit/<split>/<city>/*` and `gtFine/...`), sorted.

    Returns the number of samples written per split file.
    """
    data_dir = Path(data_dir)
    list_dir = Path(list_dir) if list_dir is not None else data_dir / "lists"
    if list_dir.exists() and not list_dir.is_dir():
        raise CityscapesDataError(f"list folder {list_dir} is a file, not a folder")
    if not (data_dir / "leftImg8bit").is_dir():
        raise CityscapesDataError(f"No leftImg8bit/ folder in {data_dir}: is --data_dir the Cityscapes root?")
    lines: dict[str, list[str]] = {}
    for split, folder in IMAGE_SPLITS.items():
        images = sorted((data_dir / "leftImg8bit" / folder).glob(f"*/*{IMAGE_SUFFIX}"))
        if not images:
            continue
        split_lines = []
        for image in images:
            relative = image.relative_to(data_dir).as_posix()
            if any(character.isspace() for character in relative):
                raise CityscapesDataError(
                    f"{image}: the path holds whitespace, which the split-file format (whitespace-separated) cannot "
                    "represent; rename the file or folder"
                )
            if split == "test":
                split_lines.append(relative)
                continue
            label = f"gtFine/{folder}/{image.parent.name}/{image.name.removesuffix(IMAGE_SUFFIX)}{LABEL_SUFFIX}"
            if not (data_dir / label).is_file():
                raise CityscapesDataError(f"Label missing for {image}: expected {data_dir / label}")
            split_lines.append(f"{relative}\t{label}")
        lines[split] = split_lines
    if "train" in lines and "validation" in lines:
        lines["trainval"] = lines["train"] + lines["validation"]
    list_dir.mkdir(parents=True, exist_ok=True)
    for split, split_lines in lines.items():
        target = list_dir / SPLIT_FILES[split]
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text("\n".join(split_lines) + "\n")
        os.replace(temporary, target)
    return {SPLIT_FILES[split]: len(split_lines) for split, split_lines in lines.items()}
