"""Pictures of predictions: colour masks and overlays."""

from __future__ import annotations

import numpy as np

from dataset_builders.cityscapes.labels import PALETTE


def colorize(class_ids: np.ndarray, palette: np.ndarray = PALETTE) -> np.ndarray:
    """`(H, W)` class ids -> `(H, W, 3)` uint8 image in the palette's colours (Cityscapes by default)."""
    return palette[np.asarray(class_ids, dtype=np.uint8)]


def overlay(image: np.ndarray, class_ids: np.ndarray, alpha: float = 0.5, palette: np.ndarray = PALETTE) -> np.ndarray:
    """`(H, W, 3)` uint8 image blended with the colour mask of `(H, W)` class ids."""
    return (image * (1 - alpha) + colorize(class_ids, palette) * alpha).round().astype(np.uint8)
