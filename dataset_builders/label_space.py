"""A dataset's classes: names, colours, the ignore value, and how stored label values become class ids.

Every way a dataset comes in (Cityscapes, split files, `save_to_disk`/parquet/Hub) ends in labels that hold class
ids 0..N-1 and the ignore value; `LabelSpace.encode` is the one place where stored values become those ids.

A labels file is JSON, in either of two forms:

- the Hub's `id2label.json` convention, a plain object `{"0": "road", "1": "car", ...}`;
- an object with `id2label` (as above) and optionally `colors` (one `[r, g, b]` per class id), `ignore_index`
  (0..255, default 255, not a class id) and `label_map` (stored value -> class id or ignore_index, e.g. Cityscapes'
  label ids -> train ids).

Stored values allowed: without `label_map`, the class ids and ignore_index; with it, the values it lists and
ignore_index (which stays ignored unless `label_map` maps it); with `reduce_labels` (the ADE20K convention, the file
names the classes after reduction), 0 -> ignore, v in 1..N -> v - 1, and ignore_index. Any other value is invalid.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatasetError

IGNORE_INDEX = 255
INVALID = -1  # lookup entry of a stored value that no label may hold
LABELS_FILE_KEYS = ("id2label", "colors", "ignore_index", "label_map")
_ID = re.compile(r"0|[1-9][0-9]*")


MAX_NAME_LENGTH = 100
# A labels file of 256 classes with long names and colours is a few tens of kilobytes.
MAX_LABELS_FILE_CHARACTERS = 1_000_000


class DuplicateKey(ValueError):
    """A JSON object that names one key twice (`json` would keep the last value without a word)."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads` object hook: the object, or `DuplicateKey` naming a key given twice."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise DuplicateKey(key)
        data[key] = value
    return data


def default_palette() -> np.ndarray:
    """`(256, 3)` uint8: class id i gets colour i + 1 of the PASCAL VOC devkit's colour map.

    The VOC map spreads the bits of the index over the high bits of r, g and b, so its 256 colours are all distinct
    and deterministic; skipping its colour 0 (black) keeps black for ignored pixels.
    """
    palette = np.zeros((256, 3), dtype=np.uint8)
    for class_id in range(255):
        index, colour = class_id + 1, [0, 0, 0]
        for shift in range(7, -1, -1):
            for channel in range(3):
                colour[channel] |= ((index >> channel) & 1) << shift
            index >>= 3
        palette[class_id] = colour
    return palette


def describe_values(values: list[int] | np.ndarray) -> str:
    """Sorted integers as ranges: [0, 1, 2, 3, 255] -> "0..3, 255"."""
    values = sorted(int(v) for v in values)
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in runs)


@dataclass(frozen=True, eq=False)
class LabelSpace:
    """The classes of a dataset, and the lookup from stored label values to class ids.

    `palette`: `(256, 3)` uint8, class id -> RGB; the ignore value and unused rows are black.
    `lookup`: `(256,)` int16, stored value -> class id, `ignore_index`, or -1 (a value no label may hold);
    by default the class ids and `ignore_index` map to themselves.
    `source`: what the space came from (a labels file), for error messages.
    """

    names: tuple[str, ...]
    palette: np.ndarray
    ignore_index: int = IGNORE_INDEX
    lookup: np.ndarray | None = None
    source: str = "the label space"

    def __post_init__(self) -> None:
        names = tuple(self.names)
        if not names or not all(isinstance(name, str) and name for name in names):
            raise DatasetError(f"{self.source}: names must be a non-empty sequence of non-empty strings")
        if not 0 <= self.ignore_index <= 255 or self.ignore_index < len(names):
            raise DatasetError(
                f"{self.source}: ignore_index {self.ignore_index} must be in {len(names)}..255 (not a class id)"
            )
        palette = np.array(self.palette, dtype=np.uint8)
        if palette.shape != (256, 3):
            raise DatasetError(f"{self.source}: palette must have shape (256, 3), got {palette.shape}")
        if self.lookup is None:
            lookup = np.full(256, INVALID, dtype=np.int16)
            lookup[: len(names)] = np.arange(len(names))
            lookup[self.ignore_index] = self.ignore_index
        else:
            lookup = np.array(self.lookup, dtype=np.int16)
        allowed = (lookup == INVALID) | ((lookup >= 0) & (lookup < len(names))) | (lookup == self.ignore_index)
        if lookup.shape != (256,) or not allowed.all():
            raise DatasetError(
                f"{self.source}: lookup must have shape (256,) and hold class ids, ignore_index or -1 only"
            )
        palette.setflags(write=False)
        lookup.setflags(write=False)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "palette", palette)
        object.__setattr__(self, "lookup", lookup)

    @property
    def num_labels(self) -> int:
        return len(self.names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def allowed_values(self) -> list[int]:
        """The stored values a label may hold."""
        return [int(value) for value in np.flatnonzero(self.lookup != INVALID)]

    @property
    def fingerprint(self) -> str:
        """Changes with anything that changes the encoded labels or their description (for caches)."""
        text = json.dumps(self.to_labels_file(), sort_keys=True).encode()
        return hashlib.sha256(text + self.lookup.tobytes()).hexdigest()[:16]

    def invalid_values(self, label: np.ndarray) -> list[int]:
        """The stored values in a `(H, W)` uint8 label that the lookup marks invalid, sorted."""
        present = np.flatnonzero(np.bincount(np.asarray(label, dtype=np.uint8).ravel(), minlength=256))
        return [int(value) for value in present if self.lookup[value] == INVALID]

    def encode(self, label: np.ndarray, what: str = "label") -> np.ndarray:
        """A `(H, W)` uint8 label of stored values -> `(H, W)` uint8 class ids (and `ignore_index`).

        Raises `DatasetError` starting with `what` (say "train.lst:3: label a.png") on any value not allowed.
        """
        label = np.asarray(label)
        if label.dtype != np.uint8 or label.ndim != 2:
            raise DatasetError(f"{what}: expected an (H, W) uint8 label, got {label.dtype} of shape {label.shape}")
        encoded = self.lookup[label]
        if (encoded == INVALID).any():
            bad = self.invalid_values(label)
            raise DatasetError(
                f"{what}: holds values {bad[:20]} not allowed by {self.source} "
                f"(allowed: {describe_values(self.allowed_values)})"
            )
        return encoded.astype(np.uint8)

    def to_labels_file(self) -> dict[str, Any]:
        """The classes as a labels file of class ids (no `label_map`): what a saved model folder keeps as
        `labels.json`, so that predictions and cards use the dataset's names and colours."""
        return {
            "id2label": {str(i): name for i, name in enumerate(self.names)},
            "colors": self.palette[: self.num_labels].tolist(),
            "ignore_index": self.ignore_index,
        }

    @classmethod
    def cityscapes(cls) -> LabelSpace:
        """The 19 Cityscapes evaluation classes; the Cityscapes builder already stores train ids, so 0..18 and 255."""
        from .cityscapes.labels import CLASS_NAMES, IGNORE_INDEX, PALETTE

        return cls(CLASS_NAMES, PALETTE, IGNORE_INDEX, source="the Cityscapes label table")

    @classmethod
    def from_labels_file(cls, path: str | Path, reduce_labels: bool = False) -> LabelSpace:
        """Read a labels file (see the module docstring); any mistake raises `DatasetError` naming file and key."""
        path = Path(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError as error:
            raise DatasetError(f"labels file not found: {path}") from error
        except OSError as error:
            raise DatasetError(f"cannot read labels file {path}: {error.strerror or error}") from error
        except UnicodeDecodeError as error:
            raise DatasetError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from error
        if len(text) > MAX_LABELS_FILE_CHARACTERS:
            raise DatasetError(
                f"{path}: {len(text)} characters, more than a labels file of 256 classes needs "
                f"({MAX_LABELS_FILE_CHARACTERS}); is it a labels file?"
            )
        try:
            data = json.loads(text, object_pairs_hook=unique_keys)
        except json.JSONDecodeError as error:
            raise DatasetError(f"{path}:{error.lineno}:{error.colno}: not valid JSON: {error.msg}") from error
        except DuplicateKey as error:
            raise DatasetError(f"{path}: key {error.args[0]!r} is given twice") from None
        except RecursionError:
            raise DatasetError(f"{path}: nested too deeply to be a labels file") from None
        return cls.from_dict(data, source=str(path), reduce_labels=reduce_labels)

    @classmethod
    def from_dict(cls, data: Any, source: str = "the labels dict", reduce_labels: bool = False) -> LabelSpace:
        """The parsed content of a labels file; `source` names it in error messages."""
        if not isinstance(data, dict):
            raise DatasetError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if "id2label" in data:
            unknown = sorted(set(data) - set(LABELS_FILE_KEYS))
            if unknown:
                raise DatasetError(
                    f"{source}: unknown keys {unknown} (a labels file may hold {', '.join(LABELS_FILE_KEYS)})"
                )
            id2label, key = data["id2label"], "id2label"
        else:
            id2label, key = data, None
        names = parse_names(id2label, source, key)
        ignore_index = parse_ignore_index(data.get("ignore_index", IGNORE_INDEX) if key else IGNORE_INDEX, source)
        if ignore_index < len(names):
            raise DatasetError(f"{source}: ignore_index {ignore_index} is a class id (classes are 0..{len(names) - 1})")
        palette = default_palette()
        if key is not None and "colors" in data:
            palette[: len(names)] = parse_colors(data["colors"], len(names), source)
        palette[len(names) :] = 0
        label_map = data.get("label_map") if key is not None else None
        if label_map is not None and reduce_labels:
            raise DatasetError(
                f"{source}: label_map and reduce_labels cannot be combined; put the reduction into label_map"
            )
        if label_map is not None:
            lookup = parse_label_map(label_map, len(names), ignore_index, source)
        elif reduce_labels:
            if 1 <= ignore_index <= len(names):
                raise DatasetError(
                    f"{source}: ignore_index {ignore_index} is in 1..{len(names)}, the stored values that "
                    "reduce_labels turns into class ids"
                )
            lookup = np.full(256, INVALID, dtype=np.int16)
            lookup[1 : len(names) + 1] = np.arange(len(names))
            lookup[[0, ignore_index]] = ignore_index
        else:
            lookup = None
        return cls(names, palette, ignore_index, lookup, source)


def parse_id(key: Any, source: str, where: str, limit: int) -> int:
    """A JSON object key that must be a decimal integer 0..limit-1 ("3", not "03" or "three")."""
    if not isinstance(key, str) or not _ID.fullmatch(key) or int(key) >= limit:
        raise DatasetError(f"{source}: {where}key {key!r} is not an integer 0..{limit - 1}")
    return int(key)


def parse_names(id2label: Any, source: str, key: str | None) -> tuple[str, ...]:
    """Class names from an id -> name object whose ids are exactly 0..N-1, N >= 1."""
    where = f"{key}: " if key else ""
    if not isinstance(id2label, dict) or not id2label:
        raise DatasetError(f"{source}: {where}expected a non-empty object of class id -> name")
    hint = "" if key else " (a labels file is either {\"0\": name, ...} or an object with 'id2label')"
    by_id: dict[int, str] = {}
    for raw_id, name in id2label.items():
        try:
            class_id = parse_id(raw_id, source, where, 256)
        except DatasetError as error:
            raise DatasetError(f"{error}{hint}") from None
        if not isinstance(name, str) or not name.strip():
            raise DatasetError(f"{source}: {where}key {raw_id!r}: the name must be a non-empty string, got {name!r}")
        if not name.isprintable() or len(name) > MAX_NAME_LENGTH:
            raise DatasetError(
                f"{source}: {where}key {raw_id!r}: a class name is one line of at most {MAX_NAME_LENGTH} printable "
                f"characters, got {name[:MAX_NAME_LENGTH]!r}"
            )
        by_id[class_id] = name
    missing = sorted(set(range(len(by_id))) - set(by_id))
    if missing:
        beyond = sorted(class_id for class_id in by_id if class_id >= len(by_id))
        raise DatasetError(
            f"{source}: {where}the {len(by_id)} class ids must be 0..{len(by_id) - 1} without gaps; "
            f"missing {missing[:10]}, beyond {beyond[:10]}"
        )
    names = tuple(by_id[class_id] for class_id in range(len(by_id)))
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DatasetError(f"{source}: {where}class names must be unique; repeated: {duplicates[:10]}")
    return names


def parse_ignore_index(value: Any, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise DatasetError(f"{source}: ignore_index must be an integer 0..255, got {value!r}")
    return value


def parse_colors(colors: Any, num_labels: int, source: str) -> np.ndarray:
    """`(num_labels, 3)` uint8 from a list of [r, g, b] lists."""
    if not isinstance(colors, list) or len(colors) != num_labels:
        got = f"{len(colors)} entries" if isinstance(colors, list) else type(colors).__name__
        raise DatasetError(
            f"{source}: colors must be a list of {num_labels} [r, g, b] entries (one per class), got {got}"
        )
    for class_id, colour in enumerate(colors):
        if not (
            isinstance(colour, list)
            and len(colour) == 3
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in colour)
        ):
            raise DatasetError(f"{source}: colors[{class_id}] must be [r, g, b] with integers 0..255, got {colour!r}")
    return np.array(colors, dtype=np.uint8)


def parse_label_map(label_map: Any, num_labels: int, ignore_index: int, source: str) -> np.ndarray:
    """The lookup of a `label_map` object: listed values -> their class id, ignore_index -> ignore, others invalid."""
    if not isinstance(label_map, dict) or not label_map:
        raise DatasetError(f"{source}: label_map must be a non-empty object of stored value -> class id")
    lookup = np.full(256, INVALID, dtype=np.int16)
    lookup[ignore_index] = ignore_index
    for raw_value, class_id in label_map.items():
        value = parse_id(raw_value, source, "label_map: ", 256)
        if (
            isinstance(class_id, bool)
            or not isinstance(class_id, int)
            or not (0 <= class_id < num_labels or class_id == ignore_index)
        ):
            raise DatasetError(
                f"{source}: label_map: key {raw_value!r} maps to {class_id!r}, which is neither a class id "
                f"(0..{num_labels - 1}) nor ignore_index ({ignore_index})"
            )
        lookup[value] = class_id
    return lookup
