"""Reading image files for prediction and model cards, and writing outputs, without silent damage.

An image that cannot be decoded (truncated, not an image, a decompression bomb) is a `UserInputError` naming the
file. 16-bit grayscale PNGs are scaled to 8 bits by their bit depth (PIL's own RGB conversion clips them to white).
Outputs are written to a temporary file beside their destination and renamed into place, so an interrupted run
never leaves a half-written file under a final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from .cli import UserInputError, one_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# PIL modes of 16-bit grayscale PNGs (`I` is what older Pillow versions give them).
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def image_size(path: Path) -> tuple[int, int]:
    """`(width, height)` from the file's header, or a `UserInputError` naming the file."""
    try:
        with Image.open(path) as image:
            return image.size
    except Image.DecompressionBombError as error:
        raise UserInputError(f"{path}: image too large to decode safely ({error})") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise UserInputError(f"{path}: cannot read as an image ({one_line(error)})") from error


def to_rgb8(image: Image.Image, path: Path) -> np.ndarray:
    """`(H, W, 3)` uint8 from a decoded PIL image; 16-bit grayscale is scaled by 255/65535, not clipped."""
    if image.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise UserInputError(
                f"{path}: {image.mode} pixel values {values.min()}..{values.max()} are outside 0..65535 (not a 16-bit "
                "image)"
            )
        gray = np.rint(values.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if image.mode == "F":
        raise UserInputError(f"{path}: 32-bit float image (mode F): its value range is unknown; save it as 8 bits")
    return np.asarray(image.convert("RGB"))


def read_rgb_image(path: str | Path) -> np.ndarray:
    """`(H, W, 3)` uint8 pixels of an image file, or a `UserInputError` naming the file."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb8(image, path)
    except Image.DecompressionBombError as error:
        raise UserInputError(f"{path}: image too large to decode safely ({error})") from error
    except UserInputError:
        raise
    except (OSError, ValueError, SyntaxError) as error:
        raise UserInputError(f"{path}: cannot read as an image ({one_line(error)})") from error


def check_folder_creatable(path: str | Path, option: str) -> Path:
    """Refuse, without creating anything, a folder path that is a file, lies under a file, or is not writable."""
    path = Path(path)
    for ancestor in (path, *path.parents):
        if ancestor.exists() or ancestor.is_symlink():
            if not ancestor.is_dir():
                where = "is" if ancestor == path else f"lies under {ancestor}, which is"
                raise UserInputError(f"{option} {path}: {where} not a folder")
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise UserInputError(f"{option} {path}: {ancestor} is not writable")
            break
    return path


def writable_folder(path: str | Path, option: str) -> Path:
    """Create `path` (and its parents) or refuse with one message naming the option and the path."""
    path = check_folder_creatable(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserInputError(f"{option} {path}: cannot create the folder ({error.strerror or error})") from error
    return path


def writable_file(path: str | Path, option: str) -> Path:
    """Refuse, without creating anything, a file path that is a folder or whose folder cannot be created."""
    path = Path(path)
    if path.is_dir():
        raise UserInputError(f"{option} {path}: is a folder; give the path of a file")
    check_folder_creatable(path.parent, f"{option} {path}: its folder")
    return path


@contextmanager
def written_atomically(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` to write, renamed onto `path` when the block ends without error and removed
    when it fails."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def replace_atomically(path: Path, write) -> None:
    """Call `write(temporary_path)` and rename the result onto `path`; on failure remove the temporary file."""
    with written_atomically(path) as temporary:
        write(temporary)


def save_png(array: np.ndarray, path: Path) -> None:
    """Write `array` as a PNG at `path`, atomically."""
    replace_atomically(path, lambda temporary: Image.fromarray(array).save(temporary, format="PNG"))
