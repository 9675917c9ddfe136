"""Room on the disk before preparing a dataset: the builders estimate what they will write, and a preparation that
would fill the disk is refused before it starts, naming both numbers."""

from __future__ import annotations

import shutil
from pathlib import Path

from .errors import DatasetError


class InsufficientDiskSpace(DatasetError):
    """The estimated size of a preparation exceeds the free space where it would be written."""

    def __init__(self, message: str, needed: int, free: int, folder: Path):
        super().__init__(message)
        self.needed, self.free, self.folder = needed, free, folder


def size_text(size: float) -> str:
    """Bytes in the largest decimal unit that keeps a number >= 1 (`6.3 MB`, `19.2 GB`)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def existing_folder(path: Path) -> Path:
    """`path`, or its nearest ancestor that exists (where a folder to be created would live)."""
    for folder in (path, *path.parents):
        if folder.is_dir():
            return folder
    return Path.cwd()


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(existing_folder(folder)).free


def check_free_space(needed: int, destination: Path, what: str) -> None:
    """Refuse, naming the estimate and the free space, to write about `needed` bytes of `what` into `destination`
    (a folder that may not exist yet) when its disk has less free."""
    free = free_bytes(destination)
    if needed > free:
        folder = existing_folder(destination)
        raise InsufficientDiskSpace(
            f"preparing {what} needs about {size_text(needed)} in {destination}, but only {size_text(free)} are free "
            f"on the disk holding {folder}; nothing was written",
            needed,
            free,
            folder,
        )
