"""A small synthetic non-Cityscapes dataset, written in every layout the generic loaders read.

Six classes (background 0 is a real class here), images of varying sizes, simple shapes whose classes keep a
consistent colour and texture so that a model can learn them. Stored labels hold the raw values 0..5, plus 255
(ignore) on a void strip in some images. The same seed gives the same images and labels.

Layouts under `output_dir`:

- `split_files/`: `images/<split>/*.png`, `labels/<split>/*.png`, `lists/{train,val,test,trainval}.lst` (test lines
  hold the image only), `labels.json` (6 classes with colours) and `labels_reduced.json` (the 5 classes after
  `reduce_labels`: background becomes ignore);
- `save_to_disk/`: a `DatasetDict` (train, validation, test) with the non-default columns `pixel_image` and `mask`;
- `parquet/`: the same rows as `<split>-00000-of-00001.parquet`.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
from PIL import Image

BACKGROUND, ROAD, LANE_MARKING, VEHICLE, PEDESTRIAN, SIGN = range(6)
CLASS_NAMES = ("background", "road", "lane_marking", "vehicle", "pedestrian", "sign")
# Colours of the labels file (visualizations), not of the rendered images.
COLORS = ((70, 70, 70), (128, 64, 128), (255, 255, 255), (0, 0, 142), (220, 20, 60), (220, 220, 0))
VOID = 255
# Image colour and texture strength of every stored value.
LOOKS: dict[int, tuple[tuple[int, int, int], float]] = {
    BACKGROUND: ((90, 120, 60), 22.0),
    ROAD: ((100, 100, 108), 5.0),
    LANE_MARKING: ((235, 235, 220), 3.0),
    VEHICLE: ((30, 45, 170), 8.0),
    PEDESTRIAN: ((200, 40, 50), 10.0),
    SIGN: ((235, 200, 30), 4.0),
    VOID: ((15, 15, 15), 2.0),
}
HEIGHTS = (48, 56, 64, 72, 80, 96)
WIDTHS = (64, 72, 80, 96)
SPLITS = {"train": "train", "validation": "val", "test": "test"}  # split -> folder and list-file stem


@dataclass(frozen=True)
class SyntheticCustomPaths:
    """Where `make_synthetic_custom` wrote each layout."""

    split_files: Path  # data_dir of the split-file builder; its lists are in `lists/`
    labels_file: Path
    reduced_labels_file: Path
    save_to_disk: Path
    parquet: Path


def draw_label(rng: np.random.Generator) -> np.ndarray:
    """A random `(H, W)` uint8 map of stored values: a road with lane marks, vehicles, pedestrians and signs."""
    height, width = int(rng.choice(HEIGHTS)), int(rng.choice(WIDTHS))
    label = np.full((height, width), BACKGROUND, dtype=np.uint8)
    rows, cols = np.mgrid[0:height, 0:width]
    top = int(height * rng.uniform(0.35, 0.5))
    bottom = int(height * rng.uniform(0.75, 0.9))
    label[top:bottom] = ROAD
    middle = (top + bottom) // 2
    dash = max(4, width // 8)
    label[middle - 1 : middle + 1][:, (np.arange(width) // dash) % 2 == 0] = LANE_MARKING
    for _ in range(rng.integers(1, 3)):
        car_height, car_width = int(height * rng.uniform(0.12, 0.2)), int(width * rng.uniform(0.18, 0.3))
        row, col = int(rng.integers(top, bottom - car_height)), int(rng.integers(0, width - car_width))
        label[row : row + car_height, col : col + car_width] = VEHICLE
    for _ in range(rng.integers(1, 3)):
        cy, cx = rng.uniform(top * 0.5, top * 0.9), rng.uniform(0, width)
        ry, rx = height * rng.uniform(0.1, 0.16), width * rng.uniform(0.025, 0.045)
        label[((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1] = PEDESTRIAN
    size = int(min(height, width) * rng.uniform(0.12, 0.18))
    row, col = int(rng.integers(0, max(1, top - size))), int(rng.integers(0, width - size))
    diamond = np.abs(rows - (row + size / 2)) + np.abs(cols - (col + size / 2)) <= size / 2
    label[diamond] = SIGN
    if rng.random() < 0.5:
        label[-int(rng.integers(2, 5)) :] = VOID
    return label


def render(rng: np.random.Generator, label: np.ndarray) -> np.ndarray:
    """Paint a label map: each value's colour and texture, stripes on vehicles, lighting and sensor noise."""
    colours = np.zeros((256, 3), dtype=np.float32)
    strength = np.zeros(256, dtype=np.float32)
    for value, (colour, texture) in LOOKS.items():
        colours[value], strength[value] = colour, texture
    image = colours[label]
    rows = np.arange(label.shape[0])[:, None]
    image[(label == VEHICLE) & (rows % 4 == 0)] *= 0.6
    image += rng.normal(0, 1, (*label.shape, 1)).astype(np.float32) * strength[label][..., None]
    image *= rng.uniform(0.85, 1.15)
    image += rng.normal(0, 3, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def labels_files(root: Path) -> tuple[Path, Path]:
    """`labels.json` (6 classes) and `labels_reduced.json` (the 5 classes left once background is ignored)."""
    full = {"id2label": dict(enumerate(CLASS_NAMES)), "colors": [list(c) for c in COLORS]}
    reduced = {"id2label": dict(enumerate(CLASS_NAMES[1:])), "colors": [list(c) for c in COLORS[1:]]}
    paths = root / "labels.json", root / "labels_reduced.json"
    for path, content in zip(paths, (full, reduced), strict=True):
        path.write_text(json.dumps(content, indent=2) + "\n")
    return paths


def make_synthetic_custom(
    output_dir: str | Path, num_train: int = 12, num_val: int = 4, num_test: int = 3, seed: int = 0
) -> SyntheticCustomPaths:
    """Write the same synthetic samples as split files, a `save_to_disk` folder and parquet files."""
    output_dir = Path(output_dir)
    root = output_dir / "split_files"
    counts = {"train": num_train, "validation": num_val, "test": num_test}
    lines: dict[str, list[str]] = {}
    rows: dict[str, dict[str, list]] = {}
    for split_index, (split, count) in enumerate(counts.items()):
        folder = SPLITS[split]
        (root / "images" / folder).mkdir(parents=True, exist_ok=True)
        if split != "test":
            (root / "labels" / folder).mkdir(parents=True, exist_ok=True)
        lines[split], rows[split] = [], {"pixel_image": [], "mask": []}
        for index in range(count):
            rng = np.random.default_rng([seed, split_index, index])
            label = draw_label(rng)
            image, mask = png_bytes(render(rng, label)), png_bytes(label)
            image_path, label_path = (
                f"images/{folder}/{folder}_{index:04d}.png",
                f"labels/{folder}/{folder}_{index:04d}.png",
            )
            (root / image_path).write_bytes(image)
            rows[split]["pixel_image"].append({"bytes": image, "path": None})
            if split == "test":  # as in most public datasets, the test labels are not given
                lines[split].append(image_path)
                continue
            (root / label_path).write_bytes(mask)
            rows[split]["mask"].append({"bytes": mask, "path": None})
            lines[split].append(f"{image_path} {label_path}")
    lines["trainval"] = lines["train"] + lines["validation"]
    (root / "lists").mkdir(exist_ok=True)
    for split, split_lines in lines.items():
        stem = SPLITS.get(split, split)
        (root / "lists" / f"{stem}.lst").write_text("\n".join(split_lines) + "\n")
    labels_file, reduced_labels_file = labels_files(root)

    splits = datasets.DatasetDict()
    for split, columns in rows.items():
        if split == "test":
            del columns["mask"]
        features = datasets.Features({column: datasets.Image() for column in columns})
        splits[split] = datasets.Dataset.from_dict(columns, features=features)
    splits.save_to_disk(output_dir / "save_to_disk")
    (output_dir / "parquet").mkdir(parents=True, exist_ok=True)
    for split, dataset in splits.items():
        dataset.to_parquet(output_dir / "parquet" / f"{split}-00000-of-00001.parquet")
    return SyntheticCustomPaths(
        root, labels_file, reduced_labels_file, output_dir / "save_to_disk", output_dir / "parquet"
    )
