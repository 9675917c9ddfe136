"""Files and folders the toolkit writes: atomic replacement, staging folders, writability checks and JSON.

Every output is written under a temporary name beside its destination and renamed into place, so an interrupted
run never leaves a half-written file under a final name; a writability check names the path and the option that
gave it before any work is done.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import UserInputError

# The suffix of every temporary file or folder the toolkit creates beside a destination.
TEMPORARY_SUFFIX = ".tmp"
# Temporaries are named `.<destination name>.<pid>-<random>.tmp`: the pid tells a crashed writer's leftovers
# (removed by the next write to the same destination) from a running writer's. The name is cut so that the whole
# stays within the 255 bytes a file name may have.
_NAME_BYTES = 200
_TEMPORARY = re.compile(r"\.(?P<name>.*)\.(?P<pid>\d+)-[a-z0-9_]{8}\.tmp")
# What a full disk raises while writing, besides OSError ENOSPC: safetensors' and torch's serializers' words.
_FULL_DISK_WORDS = ("No space left", "os error 28", "unexpected pos", "file write failed")


def temporary_prefix(destination: Path) -> str:
    short = destination.name.encode()[:_NAME_BYTES].decode(errors="ignore")
    return f".{short}.{os.getpid()}-"


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(destination: Path) -> None:
    """Remove the temporaries that writers of `destination` killed before they finished left beside it."""
    short = destination.name.encode()[:_NAME_BYTES].decode(errors="ignore")
    if not destination.parent.is_dir():
        return
    for entry in destination.parent.iterdir():
        match = _TEMPORARY.fullmatch(entry.name)
        if match and match["name"] == short and not is_running(int(match["pid"])):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def default_mode(directory: bool = False) -> int:
    """The permissions a plain write would give: 0o666 (0o777 for a folder) less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


@contextmanager
def written_atomically(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` to write, renamed onto `path` when the block ends without error and removed
    when it fails. The file gets the permissions a plain write would give it."""
    remove_stale_temporaries(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path), suffix=TEMPORARY_SUFFIX)
    os.close(descriptor)
    try:
        os.chmod(temporary, default_mode())
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def is_full_disk(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    return any(words in str(error) for words in _FULL_DISK_WORDS)


@contextmanager
def full_disk_named(folder: Path) -> Iterator[None]:
    """A write into `folder` that fails because its disk is full ends in one line saying so, whatever library
    raised it."""
    try:
        yield
    except Exception as error:
        if is_full_disk(error):
            raise UserInputError(f"no space left on the device holding {folder}") from error
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
    remove_stale_temporaries(destination)
    folder = Path(
        tempfile.mkdtemp(dir=destination.parent, prefix=temporary_prefix(destination), suffix=TEMPORARY_SUFFIX)
    )
    os.chmod(folder, default_mode(directory=True))
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
