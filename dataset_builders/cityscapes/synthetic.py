"""A synthetic Cityscapes: procedural road scenes written in the exact Cityscapes layout and naming.

Each class keeps a consistent look (colour, texture) so that a model can learn it and mIoU means something;
labels hold Cityscapes *label ids* (non-train ids such as unlabeled 0, ego vehicle 1 and static 4 included),
exactly like `gtFine/*_gtFine_labelIds.png`. The same seed gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .split_lists import IMAGE_SUFFIX, LABEL_SUFFIX, write_split_lists

CITIES = {
    "train": ("aachen", "bochum", "bremen"),
    "val": ("frankfurt", "lindau", "munster"),
    "test": ("berlin", "bielefeld", "bonn"),
}

# Cityscapes label ids used by the generator.
UNLABELED, EGO_VEHICLE, STATIC = 0, 1, 4
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE = 7, 8, 11, 12, 13, 17
TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY, PERSON, CAR = 19, 20, 21, 22, 23, 24, 26

# Base colour and texture strength of every label id the generator draws.
LOOKS: dict[int, tuple[tuple[int, int, int], float]] = {
    UNLABELED: ((20, 20, 20), 4.0),
    EGO_VEHICLE: ((35, 35, 45), 3.0),
    STATIC: ((120, 90, 60), 8.0),
    ROAD: ((95, 90, 100), 6.0),
    SIDEWALK: ((185, 160, 175), 10.0),
    BUILDING: ((110, 80, 70), 12.0),
    WALL: ((150, 150, 120), 6.0),
    FENCE: ((170, 140, 110), 6.0),
    POLE: ((200, 200, 205), 4.0),
    TRAFFIC_LIGHT: ((240, 170, 20), 6.0),
    TRAFFIC_SIGN: ((230, 230, 30), 6.0),
    VEGETATION: ((50, 120, 40), 25.0),
    TERRAIN: ((150, 200, 110), 14.0),
    SKY: ((110, 170, 230), 3.0),
    PERSON: ((200, 30, 60), 10.0),
    CAR: ((20, 30, 150), 8.0),
}


@dataclass
class Canvas:
    """A label map and helpers to paint shapes into it."""

    label: np.ndarray
    rows: np.ndarray
    cols: np.ndarray

    @classmethod
    def empty(cls, height: int, width: int) -> Canvas:
        rows, cols = np.mgrid[0:height, 0:width]
        return cls(np.full((height, width), SKY, dtype=np.uint8), rows, cols)

    @property
    def height(self) -> int:
        return self.label.shape[0]

    @property
    def width(self) -> int:
        return self.label.shape[1]

    def rect(self, top: float, left: float, bottom: float, right: float, label_id: int) -> None:
        top, bottom = int(max(0, top)), int(min(self.height, bottom))
        left, right = int(max(0, left)), int(min(self.width, right))
        if bottom > top and right > left:
            self.label[top:bottom, left:right] = label_id

    def ellipse(self, cy: float, cx: float, ry: float, rx: float, label_id: int) -> None:
        top, bottom = int(max(0, cy - ry)), int(min(self.height, cy + ry + 1))
        left, right = int(max(0, cx - rx)), int(min(self.width, cx + rx + 1))
        if bottom <= top or right <= left:
            return
        rows, cols = self.rows[top:bottom, left:right], self.cols[top:bottom, left:right]
        inside = ((rows - cy) / max(ry, 1)) ** 2 + ((cols - cx) / max(rx, 1)) ** 2 <= 1
        self.label[top:bottom, left:right][inside] = label_id


def draw_scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A road scene as a `(height, width)` map of Cityscapes label ids."""
    canvas = Canvas.empty(height, width)
    horizon = height * rng.uniform(0.38, 0.5)
    vanish_x = width * rng.uniform(0.4, 0.6)

    # Buildings along the skyline, some walls and fences in front of them.
    x = -rng.uniform(0, width * 0.1)
    while x < width:
        building_width = width * rng.uniform(0.08, 0.22)
        if rng.random() < 0.85:
            canvas.rect(horizon - height * rng.uniform(0.12, 0.38), x, horizon + 2, x + building_width, BUILDING)
        x += building_width + width * rng.uniform(0, 0.04)

    # Ground: terrain, then sidewalks and the road in perspective.
    below = canvas.rows >= horizon
    canvas.label[below] = TERRAIN
    depth = np.clip((canvas.rows - horizon) / (height - horizon), 0, None)
    offset = canvas.cols - vanish_x
    road_half = depth * width * rng.uniform(0.3, 0.45)
    sidewalk_half = road_half + depth * width * rng.uniform(0.1, 0.2)
    canvas.label[below & (np.abs(offset) < sidewalk_half)] = SIDEWALK
    canvas.label[below & (np.abs(offset) < road_half)] = ROAD

    # Trees and bushes near the horizon.
    for _ in range(rng.integers(3, 7)):
        cx = rng.uniform(0, width)
        radius = height * rng.uniform(0.05, 0.12)
        canvas.ellipse(horizon - radius * 0.6, cx, radius, radius * rng.uniform(0.8, 1.5), VEGETATION)
        canvas.rect(horizon - radius * 0.2, cx - radius * 0.08, horizon + radius * 0.4, cx + radius * 0.08, VEGETATION)

    wall_x = rng.uniform(0, width * 0.7)
    canvas.rect(horizon - height * 0.05, wall_x, horizon + height * 0.02, wall_x + width * 0.15, WALL)
    fence_x = rng.uniform(0, width * 0.8)
    for post in range(8):
        left = fence_x + post * width * 0.012
        canvas.rect(horizon - height * 0.04, left, horizon + height * 0.03, left + width * 0.004, FENCE)
    canvas.rect(horizon - height * 0.035, fence_x, horizon - height * 0.028, fence_x + width * 0.09, FENCE)

    # Poles with signs and traffic lights on the sidewalks.
    for side in (-1, 1):
        for _ in range(rng.integers(1, 3)):
            row = horizon + (height - horizon) * rng.uniform(0.25, 0.6)
            d = (row - horizon) / (height - horizon)
            col = vanish_x + side * d * width * rng.uniform(0.5, 0.6)
            pole_height = height * 0.5 * d + 10
            pole_width = max(2.0, width * 0.006 * d)
            canvas.rect(row - pole_height, col - pole_width, row, col + pole_width, POLE)
            if rng.random() < 0.5:
                size = max(4.0, width * 0.025 * d)
                canvas.rect(row - pole_height - size, col - size, row - pole_height + size, col + size, TRAFFIC_SIGN)
            else:
                size = max(3.0, width * 0.012 * d)
                canvas.rect(row - pole_height - 3 * size, col - size, row - pole_height, col + size, TRAFFIC_LIGHT)

    # People on the sidewalks, cars on the road (farther ones first so nearer ones cover them).
    objects = []
    for _ in range(rng.integers(1, 4)):
        objects.append((rng.uniform(0.15, 0.8), PERSON, rng.choice([-1, 1]) * rng.uniform(0.38, 0.5)))
    for _ in range(rng.integers(1, 4)):
        objects.append((rng.uniform(0.15, 0.8), CAR, rng.uniform(-0.3, 0.3)))
    for d, kind, lateral in sorted(objects, key=lambda o: o[0]):
        row = horizon + d * (height - horizon)
        col = vanish_x + lateral * d * width
        scale = d * height
        if kind == PERSON:
            canvas.rect(row - scale * 0.45, col - scale * 0.06, row, col + scale * 0.06, PERSON)
            canvas.ellipse(row - scale * 0.5, col, scale * 0.06, scale * 0.05, PERSON)
        else:
            car_width = scale * rng.uniform(0.5, 0.7)
            canvas.rect(row - scale * 0.22, col - car_width / 2, row, col + car_width / 2, CAR)
            canvas.rect(row - scale * 0.34, col - car_width / 3, row - scale * 0.2, col + car_width / 3, CAR)

    # Non-train ids: a static object, an unlabeled patch and the ego vehicle's bonnet.
    static_x = rng.uniform(0, width * 0.9)
    canvas.rect(horizon - height * 0.02, static_x, horizon + height * 0.03, static_x + width * 0.03, STATIC)
    unlabeled_x = rng.uniform(0, width * 0.9)
    canvas.rect(height * 0.02, unlabeled_x, height * 0.06, unlabeled_x + width * 0.05, UNLABELED)
    canvas.rect(height * (1 - rng.uniform(0.05, 0.09)), 0, height, width, EGO_VEHICLE)
    return canvas.label


def render(rng: np.random.Generator, label: np.ndarray) -> np.ndarray:
    """Paint a label map: each class's colour, a class-specific texture, global lighting and sensor noise."""
    height, width = label.shape
    colours = np.zeros((256, 3), dtype=np.float32)
    strength = np.zeros(256, dtype=np.float32)
    for label_id, (colour, texture) in LOOKS.items():
        colours[label_id] = colour
        strength[label_id] = texture
    image = colours[label]
    rows, cols = np.mgrid[0:height, 0:width]
    # Windows on buildings, lane marks on the road, a gradient in the sky.
    windows = ((rows // max(4, height // 40)) % 3 == 0) & ((cols // max(4, width // 80)) % 3 == 0)
    image[(label == BUILDING) & windows] *= 0.55
    lanes = (np.abs(cols - width / 2) < width * 0.004) & ((rows // max(4, height // 30)) % 2 == 0)
    image[(label == ROAD) & lanes] = 230
    sky = label == SKY
    image[sky] *= (0.85 + 0.3 * rows[sky] / height)[:, None]
    image += rng.normal(0, 1, (height, width, 1)).astype(np.float32) * strength[label][..., None]
    image *= rng.uniform(0.8, 1.2)
    image += rng.normal(0, 3, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_synthetic_cityscapes(
    output_dir: str | Path,
    num_train: int = 40,
    num_val: int = 10,
    num_test: int = 5,
    height: int = 256,
    width: int = 512,
    seed: int = 0,
) -> dict[str, int]:
    """Write leftImg8bit/, gtFine/ and lists/ under `output_dir`; return the number of lines per split file."""
    output_dir = Path(output_dir)
    counts = {"train": num_train, "val": num_val, "test": num_test}
    for split_index, (folder, count) in enumerate(counts.items()):
        cities = CITIES[folder]
        for index in range(count):
            rng = np.random.default_rng([seed, split_index, index])
            label = draw_scene(rng, height, width)
            image = render(rng, label)
            city = cities[index % len(cities)]
            stem = f"{city}_{index // len(cities):06d}_{19 + index:06d}"
            image_dir = output_dir / "leftImg8bit" / folder / city
            label_dir = output_dir / "gtFine" / folder / city
            image_dir.mkdir(parents=True, exist_ok=True)
            label_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(image_dir / f"{stem}{IMAGE_SUFFIX}", compress_level=1)
            Image.fromarray(label).save(label_dir / f"{stem}{LABEL_SUFFIX}", compress_level=1)
    return write_split_lists(output_dir, overwrite=True)
