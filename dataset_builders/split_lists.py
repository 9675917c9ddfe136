"""Split files in the original DDRNet/HRNet format (`train.lst`, `val.lst`, `test.lst`, `trainval.lst`).

One sample a line, paths relative to the data root, separated by any whitespace:
`leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png  gtFine/val/frankfurt/..._gtFine_labelIds.png`.
Test lines may hold the image only. Paths therefore cannot hold whitespace, and must stay inside the data root:
absolute paths and `..` are refused.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from .errors import DatasetError

SPLIT_FILES = {"train": "train.lst", "validation": "val.lst", "test": "test.lst", "trainval": "trainval.lst"}


@dataclass(frozen=True)
class Sample:
    image: str
    label: str | None
    source: str  # "<split file>:<line>", for error messages


def escapes_root(relative: str) -> bool:
    """An absolute path (POSIX or Windows) or one with a `..` component: it may name a file outside the data root."""
    windows = PureWindowsPath(relative)
    return (
        PurePosixPath(relative).is_absolute()
        or bool(windows.drive or windows.root)
        or ".." in PurePosixPath(relative).parts
        or ".." in windows.parts
    )


def read_split_file(
    path: Path, data_dir: Path, with_labels: bool, error: type[DatasetError] = DatasetError
) -> list[Sample]:
    """Parse a split file and check that every file it names exists; bad lines raise `error` naming file:line.

    Without labels (the test split) a line holds the image, optionally followed by a label that is not used.
    """
    if not path.is_file():
        raise error(f"Split file not found: {path}")
    samples = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as decode_error:
            raise error(
                f"{path}:{number}: not UTF-8 text ({decode_error.reason} at byte {decode_error.start})"
            ) from decode_error
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{number}"
        if with_labels and len(fields) != 2:
            raise error(f"{where}: expected 2 fields (<image> <label>), got {len(fields)}: {line!r}")
        if not with_labels and len(fields) > 2:
            raise error(f"{where}: expected 1 field (<image>), got {len(fields)}: {line!r}")
        image, label = fields[0], (fields[1] if with_labels else None)
        for relative in (image, label):
            if relative is not None and escapes_root(relative):
                raise error(
                    f"{where}: {relative!r} is not a path inside the data folder (absolute paths and '..' are refused)"
                )
            if relative is not None and not (data_dir / relative).is_file():
                raise error(f"{where}: file not found: {data_dir / relative}")
        samples.append(Sample(image, label, where))
    if not samples:
        raise error(f"Split file is empty: {path}")
    return samples


def find_split_files(list_dir: Path, hint: str, error: type[DatasetError] = DatasetError) -> dict[str, Path]:
    """The split files present in `list_dir`, by split name; none at all raises `error` ending with `hint`."""
    present = {split: list_dir / name for split, name in SPLIT_FILES.items() if (list_dir / name).is_file()}
    if not present:
        raise error(f"No split file in {list_dir} (expected any of {', '.join(SPLIT_FILES.values())}); {hint}")
    return present


def read_samples(
    data_dir: Path, split_files: dict[str, Path], error: type[DatasetError] = DatasetError
) -> dict[str, list[Sample]]:
    """Every split file parsed; the test split's lines need no label."""
    return {
        split: read_split_file(path, data_dir, with_labels=split != "test", error=error)
        for split, path in split_files.items()
    }


def fingerprint(
    data_dir: Path, split_files: dict[str, Path], samples: dict[str, list[Sample]], extra: bytes = b""
) -> str:
    """Changes when a split file, any file it names (size or modification time) or `extra` changes."""
    digest = hashlib.sha256(extra)
    for split, path in sorted(split_files.items()):
        digest.update(f"{split}\0".encode() + path.read_bytes())
    for split_samples in samples.values():
        for sample in split_samples:
            for relative in (sample.image, sample.label):
                if relative is not None:
                    stat = os.stat(data_dir / relative)
                    digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:16]
