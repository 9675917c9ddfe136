"""Split files in the original DDRNet/HRNet format (`train.lst`, `val.lst`, `test.lst`, `trainval.lst`).

One sample a line, paths relative to the data root, separated by any whitespace:
`leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png  gtFine/val/frankfurt/..._gtFine_labelIds.png`.
Test lines hold the image only. Paths therefore cannot hold whitespace (`write_split_lists` refuses such a tree),
and must stay inside the data root: absolute paths and `..` are refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

SPLIT_FILES = {"train": "train.lst", "validation": "val.lst", "test": "test.lst", "trainval": "trainval.lst"}
IMAGE_SPLITS = {"train": "train", "validation": "val", "test": "test"}
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


class CityscapesDataError(ValueError):
    """Bad Cityscapes input; the message names the file (and line) at fault."""


@dataclass(frozen=True)
class Sample:
    image: str
    label: str | None
    source: str  # "<split file>:<line>", for error messages

    @property
    def name(self) -> str:
        return Path(self.image).name.removesuffix(IMAGE_SUFFIX).removesuffix(".png")

    @property
    def city(self) -> str:
        return Path(self.image).parent.name


def escapes_root(relative: str) -> bool:
    """An absolute path (POSIX or Windows) or one with a `..` component: it may name a file outside the data root."""
    windows = PureWindowsPath(relative)
    return (
        PurePosixPath(relative).is_absolute()
        or bool(windows.drive or windows.root)
        or ".." in PurePosixPath(relative).parts
        or ".." in windows.parts
    )


def read_split_file(path: Path, data_dir: Path, with_labels: bool) -> list[Sample]:
    """Parse a split file and check that every file it names exists."""
    if not path.is_file():
        raise CityscapesDataError(f"Split file not found: {path}")
    samples = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise CityscapesDataError(
                f"{path}:{number}: not UTF-8 text ({error.reason} at byte {error.start})"
            ) from error
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{number}"
        if with_labels and len(fields) != 2:
            raise CityscapesDataError(f"{where}: expected 2 fields (<image> <label>), got {len(fields)}: {line!r}")
        if not with_labels and len(fields) > 2:
            raise CityscapesDataError(f"{where}: expected 1 field (<image>), got {len(fields)}: {line!r}")
        image, label = fields[0], (fields[1] if with_labels else None)
        for relative in (image, label):
            if relative is not None and escapes_root(relative):
                raise CityscapesDataError(
                    f"{where}: {relative!r} is not a path inside the data folder (absolute paths and '..' are refused)"
                )
            if relative is not None and not (data_dir / relative).is_file():
                raise CityscapesDataError(f"{where}: file not found: {data_dir / relative}")
        samples.append(Sample(image, label, where))
    if not samples:
        raise CityscapesDataError(f"Split file is empty: {path}")
    return samples


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
