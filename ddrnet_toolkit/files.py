"""Files and folders the toolkit writes: atomic replacement, staging folders, writability checks and JSON.

Every output is written under a temporary name beside its destination and renamed into place, so an interrupted
run never leaves a half-written file under a final name; a writability check names the path and the option that
gave it before any work is done.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import UserInputError

# The suffix of every temporary file or folder the toolkit creates beside a destination.
TEMPORARY_SUFFIX = ".tmp"


@contextmanager
def written_atomically(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` to write, renamed onto `path` when the block ends without error and removed
    when it fails."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    os.close(descriptor)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(temporary_path)` and rename the result onto `path`; on failure remove the temporary file."""
    with written_atomically(path) as temporary:
        write(temporary)


def write_text_atomically(path: Path, text: str) -> None:
    replace_atomically(path, lambda temporary: temporary.write_text(text))


def json_text(data: Any) -> str:
    """`data` as the toolkit writes JSON: indented, with a final newline."""
    return json.dumps(data, indent=2) + "\n"


def write_json(path: Path, data: Any) -> None:
    """`data` as `json_text`, written atomically."""
    write_text_atomically(path, json_text(data))


def read_json_file(path: Path, what: str = "") -> dict:
    """A JSON object from `path`, or a `UserInputError` naming the file and the position of a syntax error."""
    try:
        data = json.loads(path.read_text())
    except UnicodeDecodeError as error:
        raise UserInputError(f"{path}: not a UTF-8 text file ({error.reason})") from error
    except json.JSONDecodeError as error:
        raise UserInputError(
            f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from error
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a JSON object{what}, got {type(data).__name__}")
    return data


@contextmanager
def staging_folder(destination: Path) -> Iterator[Path]:
    """A fresh, empty hidden folder beside `destination` (on the same file system, so that what is written into it
    moves in by rename), removed with whatever is left in it when the block ends."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=TEMPORARY_SUFFIX))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_folder_creatable(path: str | Path, option: str) -> Path:
    """Refuse, without creating anything, a folder path that is a file, lies under a file, or is not writable."""
    path = Path(path)
    for ancestor in (path, *path.parents):
        if ancestor.exists() or ancestor.is_symlink():
            if not ancestor.is_dir():
                if ancestor == path:
                    raise UserInputError(f"{option} {path}: is not a folder")
                raise UserInputError(f"{option} {path} cannot be written: {ancestor} is not a folder")
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise UserInputError(f"{option} {path} cannot be written: {ancestor} is not writable")
            break
    return path


def writable_folder(path: str | Path, option: str) -> Path:
    """Create `path` (and its parents) and check that a file can be written in it, or refuse with one message
    naming the option and the path."""
    path = check_folder_creatable(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check.", suffix=TEMPORARY_SUFFIX):
            pass
    except OSError as error:
        raise UserInputError(f"{option} {path} cannot be written: {error.strerror or error}") from error
    return path


def writable_file(path: str | Path, option: str) -> Path:
    """Refuse, without creating anything, a file path that is a folder or whose folder cannot be created."""
    path = Path(path)
    if path.is_dir():
        raise UserInputError(f"{option} {path} is a folder; give the path of a file")
    check_folder_creatable(path.parent, f"{option} {path}: its folder")
    return path
