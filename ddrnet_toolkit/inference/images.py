"""Reading image files for prediction and model cards, and writing label pictures, without silent damage.

An image that cannot be decoded (truncated, not an image, a decompression bomb) is a `UserInputError` naming the
file. 16-bit grayscale PNGs are scaled to 8 bits by their bit depth (PIL's own RGB conversion clips them to white).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..errors import UserInputError, one_line
from ..files import replace_atomically

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


# OpenCV's libpng at zlib level 1: a 2048x1024 overlay of a photo-like image was written in 0.2 s, against 0.27-0.42 s
# for Pillow at level 1 and 1.4 s for Pillow's default level 6, for about 13% more bytes than level 6 (colour masks
# and label maps, mostly flat, stay a few tens of kB).
PNG_PARAMETERS = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def encode_png(array: np.ndarray) -> bytes:
    """`(H, W)` or `(H, W, 3)` RGB uint8 as PNG bytes."""
    pixels = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
    encoded, data = cv2.imencode(".png", pixels, PNG_PARAMETERS)
    if not encoded:
        raise ValueError(f"OpenCV could not encode a {array.shape} {array.dtype} array as PNG")
    return data.tobytes()


def save_png(array: np.ndarray, path: Path) -> None:
    """Write `array` (`(H, W)` or `(H, W, 3)` RGB, uint8) as a PNG at `path`, atomically."""
    data = encode_png(np.ascontiguousarray(array))
    replace_atomically(path, lambda temporary: temporary.write_bytes(data))
