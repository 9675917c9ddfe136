"""Split files in the original DDRNet/HRNet format (`train.lst`, `val.lst`, `test.lst`, `trainval.lst`).

One sample a line, paths relative to the data root, separated by any whitespace:
`leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png  gtFine/val/frankfurt/..._gtFine_labelIds.png`.
Test lines may hold the image only; a test split is labelled when its lines name labels. Paths therefore cannot
hold whitespace, and must stay inside the data root: absolute paths and `..` are refused, with a hint that names
the prefix to strip when the files exist under the data root.
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


def outside_the_root(relative: str, data_dir: Path) -> str:
    """Why a path of a split file is refused, and how to mend the lists: when the files lie under `data_dir` behind
    a prefix (lists written on another machine: `/SegNet/CamVid/train/a.png`), the prefix to strip."""
    message = f"{relative!r} is not a path inside the data folder (absolute paths and '..' are refused)"
    parts = PurePosixPath(relative).parts
    for start in range(1, len(parts)):
        if ".." not in parts[start:] and (data_dir / PurePosixPath(*parts[start:])).is_file():
            prefix = PurePosixPath(*parts[:start]).as_posix().rstrip("/") + "/"
            return (
                f"{message}; the files are in {data_dir} behind the prefix {prefix!r}: remove it from the start of "
                f"every path, or write the lists with `python scripts/make_lists.py --data_dir {data_dir}`"
            )
    return f"{message}; write paths relative to {data_dir} (`python scripts/make_lists.py --data_dir {data_dir}`)"


def read_split_file(
    path: Path, data_dir: Path, with_labels: bool | None, error: type[DatasetError] = DatasetError
) -> list[Sample]:
    """Parse a split file and check that every file it names exists; bad lines raise `error` naming file:line.

    `with_labels`: every line is `<image> <label>` (True), or `<image>`, optionally followed by a label that is not
    used (False); None: labelled when the first line names a label, and then every line must.
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
        if with_labels is None:
            with_labels = len(fields) == 2
        if with_labels and len(fields) != 2:
            raise error(f"{where}: expected 2 fields (<image> <label>), got {len(fields)}: {line!r}")
        if not with_labels and len(fields) > 2:
            raise error(f"{where}: expected 1 field (<image>), got {len(fields)}: {line!r}")
        image, label = fields[0], (fields[1] if with_labels else None)
        for relative in (image, label):
            if relative is not None and escapes_root(relative):
                raise error(f"{where}: {outside_the_root(relative, data_dir)}")
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
    data_dir: Path,
    split_files: dict[str, Path],
    error: type[DatasetError] = DatasetError,
    labelled_test: bool = True,
) -> dict[str, list[Sample]]:
    """Every split file parsed; the test split's lines need no label, and with `labelled_test` the test split is
    labelled when its lines name labels (else its labels are not used)."""
    return {
        split: read_split_file(path, data_dir, (None if labelled_test else False) if split == "test" else True, error)
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


def list_line(data_dir: Path, image: Path, label: Path | None, error: type[DatasetError] = DatasetError) -> str:
    """The split-file line of an image (and its label), paths relative to `data_dir`; a path holding whitespace,
    which the format cannot represent, is refused."""
    relative = [path.relative_to(data_dir).as_posix() for path in (image, label) if path is not None]
    for path, name in zip((image, label), relative, strict=False):
        if any(character.isspace() for character in name):
            raise error(
                f"{path}: the path holds whitespace, which the split-file format (whitespace-separated) cannot "
                "represent; rename the file or folder"
            )
    return "\t".join(relative)


def write_split_files(
    list_dir: Path, lines: dict[str, list[str]], overwrite: bool = False, error: type[DatasetError] = DatasetError
) -> dict[str, int]:
    """Write the split files of `lines` (by split name), and `trainval.lst` from train and validation, each
    atomically; returns the lines per file. A list that exists with other lines is the user's: refused unless
    `overwrite`, before anything is written."""
    if list_dir.exists() and not list_dir.is_dir():
        raise error(f"list folder {list_dir} is a file, not a folder")
    lines = dict(lines)
    if "train" in lines and "validation" in lines:
        lines["trainval"] = lines["train"] + lines["validation"]
    texts = {list_dir / SPLIT_FILES[split]: "\n".join(split_lines) + "\n" for split, split_lines in lines.items()}
    changed = [path for path, text in texts.items() if path.is_file() and path.read_text(errors="replace") != text]
    if changed and not overwrite:
        names = ", ".join(str(path) for path in changed)
        raise error(f"{names} already hold other lines: pass --overwrite to replace them, or choose --list_dir")
    list_dir.mkdir(parents=True, exist_ok=True)
    for path, text in texts.items():
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(text)
        os.replace(temporary, path)
    return {path.name: len(split_lines) for path, split_lines in zip(texts, lines.values(), strict=True)}
