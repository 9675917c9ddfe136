"""Cityscapes label tables, taken from the official cityscapesScripts definitions."""

from __future__ import annotations

import numpy as np
from cityscapesscripts.helpers.labels import labels as OFFICIAL_LABELS

IGNORE_INDEX = 255

_TRAIN_LABELS = sorted(
    (label for label in OFFICIAL_LABELS if 0 <= label.trainId < IGNORE_INDEX), key=lambda x: x.trainId
)
CLASS_NAMES: tuple[str, ...] = tuple(label.name for label in _TRAIN_LABELS)

# Label ids that may appear in a `*_gtFine_labelIds.png` (0..33; the license plate's -1 never reaches a PNG).
KNOWN_LABEL_IDS: frozenset[int] = frozenset(label.id for label in OFFICIAL_LABELS if label.id >= 0)


def _label_id_to_train_id() -> np.ndarray:
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for label in OFFICIAL_LABELS:
        if label.id >= 0:
            table[label.id] = label.trainId if 0 <= label.trainId < IGNORE_INDEX else IGNORE_INDEX
    return table


def _train_id_to_label_id() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint8)  # ignored pixels become "unlabeled" (id 0) for the benchmark server
    for label in _TRAIN_LABELS:
        table[label.trainId] = label.id
    return table


def _palette() -> np.ndarray:
    palette = np.zeros((256, 3), dtype=np.uint8)
    for label in _TRAIN_LABELS:
        palette[label.trainId] = label.color
    return palette


LABEL_ID_TO_TRAIN_ID = _label_id_to_train_id()
TRAIN_ID_TO_LABEL_ID = _train_id_to_label_id()
# Train id -> RGB colour, as the benchmark's visualizations; ignored pixels (255) are black.
PALETTE = _palette()
