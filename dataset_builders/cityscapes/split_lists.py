"""Cityscapes' split files: the Cityscapes naming, the error type, and writing the lists for a Cityscapes tree.

The `.lst` format itself is parsed by `dataset_builders.split_lists`, which the generic split-file builder shares.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from ..split_lists import Sample, list_line, write_split_files
from ..split_lists import read_split_file as read_any_split_file

IMAGE_SPLITS = {"train": "train", "validation": "val", "test": "test"}
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


class CityscapesDataError(DatasetError):
    """Bad Cityscapes input; the message names the file (and line) at fault."""


def read_split_file(path: Path, data_dir: Path, with_labels: bool) -> list[Sample]:
    """Parse a split file and check that every file it names exists; raises `CityscapesDataError`."""
    return read_any_split_file(path, data_dir, with_labels, error=CityscapesDataError)


def write_split_lists(
    data_dir: str | Path, list_dir: str | Path | None = None, overwrite: bool = False
) -> dict[str, int]:
    """Write the split files for a Cityscapes tree (`leftImg8bit/<split>/<city>/*` and `gtFine/...`), sorted
    (see `write_split_files`). Returns the number of samples written per split file.
    """
    data_dir = Path(data_dir)
    list_dir = Path(list_dir) if list_dir is not None else data_dir / "lists"
    if not (data_dir / "leftImg8bit").is_dir():
        raise CityscapesDataError(f"No leftImg8bit/ folder in {data_dir}: is --data_dir the Cityscapes root?")
    lines: dict[str, list[str]] = {}
    for split, folder in IMAGE_SPLITS.items():
        images = sorted((data_dir / "leftImg8bit" / folder).glob(f"*/*{IMAGE_SUFFIX}"))
        if not images:
            continue
        split_lines = []
        for image in images:
            label = None
            if split != "test":
                stem = image.name.removesuffix(IMAGE_SUFFIX)
                label = data_dir / "gtFine" / folder / image.parent.name / f"{stem}{LABEL_SUFFIX}"
                if not label.is_file():
                    raise CityscapesDataError(f"Label missing for {image}: expected {label}")
            split_lines.append(list_line(data_dir, image, label, CityscapesDataError))
        lines[split] = split_lines
    return write_split_files(list_dir, lines, overwrite, CityscapesDataError)
