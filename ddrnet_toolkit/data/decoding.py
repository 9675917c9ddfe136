"""Decoding what a split stores: encoded image and label bytes (or PIL images) to uint8 arrays.

PNGs go through libspng (`pyspng`), 1.5x faster than PIL or OpenCV; other formats through OpenCV.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import datasets
import numpy as np
import pyspng
from PIL import Image

# One OpenCV thread per process: the DataLoader's workers are the parallelism, and a process that forks workers
# while OpenCV's own thread pool is alive (data loaded in the main process, then an evaluation loader) would hang
# them.
cv2.setNumThreads(1)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def stored_bytes(value: dict) -> bytes:
    """The encoded file of an undecoded `datasets.Image` value (`{"bytes", "path"}`)."""
    return value["bytes"] if value["bytes"] is not None else Path(value["path"]).read_bytes()


def decode_image(data: bytes, alpha: bool = False) -> np.ndarray:
    """Encoded image -> `(H, W, 3)` uint8 RGB, or `(H, W, 4)` RGBA with `alpha` (opaque; `warpAffine` is twice as
    fast on 4 channels). PNGs go through libspng, 1.5x faster than PIL or OpenCV; other formats through OpenCV."""
    if data.startswith(_PNG_SIGNATURE):
        return pyspng.load(data, format="RGBA" if alpha else "RGB")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)
    if image is None:
        raise ValueError("cannot decode the stored image bytes")
    return cv2.cvtColor(image, cv2.COLOR_RGB2RGBA) if alpha else image


def decode_label(data: bytes) -> np.ndarray:
    """Single-channel label PNG -> `(H, W)` uint8."""
    return pyspng.load(data)


def image_pixels(value: dict | Image.Image, alpha: bool = False) -> np.ndarray:
    """A row's image, stored bytes or a PIL image, as `decode_image` returns it."""
    if isinstance(value, Image.Image):
        return np.asarray(value.convert("RGBA" if alpha else "RGB"))
    return decode_image(stored_bytes(value), alpha)


def label_values(value: dict | Image.Image) -> np.ndarray:
    """A row's label, stored bytes or a PIL image, as `(H, W)` uint8."""
    return np.asarray(value) if isinstance(value, Image.Image) else decode_label(stored_bytes(value))


def undecoded(split: datasets.Dataset) -> datasets.Dataset:
    """The split with its image columns yielding stored bytes instead of PIL images (no data is rewritten).

    A split read through a transform (a `datasets` dataset whose labels are encoded as they are read, see
    `dataset_builders.image_label_datasets`) keeps it, and yields PIL images.
    """
    if split.format["type"] == "custom":
        return split
    for column in ("image", "label"):
        if column in split.column_names:
            split = split.cast_column(column, datasets.Image(decode=False))
    return split
