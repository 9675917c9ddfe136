"""The training augmentation of the original recipe, computed on uint8 arrays in the workers.

Scale the long side to `base_size * s` with `s` drawn from {0.5, 0.6, ..., 2.0} (the paper's range; the original
code's `0.5 + random.randint(0, 16) / 10` also draws 2.1), pad (images with `PAD_COLOUR`, 0 after normalization;
labels with the ignore value) and randomly crop to `crop_size`, flip horizontally with probability 0.5.

Only the crop is computed: each crop pixel is mapped back to the source image with the half-pixel-centre
convention of `cv2.resize` and PIL, `x_source = (x_scaled + 0.5) * width / scaled_width - 0.5`, and sampled there
bilinearly (`cv2.warpAffine`, the flip folded into the matrix). Bilinear does not antialias when it shrinks, as the
original code's `cv2.resize` did not; otherwise the pixels equal a whole-image `cv2.resize` then crop within one
grey level. Labels take nearest neighbours with Pillow's index arithmetic, so they equal Pillow's resize bit for
bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dataset_builders.label_space import IGNORE_INDEX

from .normalization import PAD_COLOUR


def nearest_indices(size: int, scaled_size: int) -> np.ndarray:
    """`(scaled_size,)` source index of each pixel of a NEAREST resize, as Pillow computes it.

    Pillow starts at `step / 2` and adds `step` once per pixel in double precision, truncating each position;
    `np.add.accumulate` adds sequentially, so it rounds the same way (the closed form `(x + 0.5) * step` differs at
    exact ties).
    """
    step = size / scaled_size
    positions = np.add.accumulate(np.concatenate(([step * 0.5], np.full(scaled_size - 1, step))))
    return np.minimum(positions.astype(np.intp), size - 1)


@dataclass
class TrainAugmentation:
    """Random scale, pad, crop and flip (see the module docstring), uint8 in and out, and two options that the
    original recipe leaves off:

    - `rare_class_probability`: with this probability a crop is placed around a class rather than anywhere: a class
      is drawn uniformly from those present in the image (so a class of a few pixels is as likely as the road), then
      one of its pixels, and the crop is drawn among the positions that contain that pixel.
    - `color_jitter`: brightness, contrast (around the mean grey) and saturation each scaled by a factor drawn
      from `[1 - color_jitter, 1 + color_jitter]`, in that order, on the image part of the crop (not the padding).

    Their draws come after the original ones from the same per-sample generator, and only when they are on.
    """

    crop_size: tuple[int, int] = (1024, 1024)
    base_size: int = 2048
    scale_range: tuple[float, float] = (0.5, 2.0)
    scale_step: float = 0.1
    flip: bool = True
    ignore_index: int = IGNORE_INDEX  # the label value of padding
    rare_class_probability: float = 0.0
    color_jitter: float = 0.0

    def __post_init__(self) -> None:
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(f"scale_range must satisfy 0 < min <= max, got {self.scale_range}")
        if min(self.crop_size) < 1 or self.base_size < 1:
            raise ValueError(f"crop_size and base_size must be positive, got {self.crop_size}, {self.base_size}")
        if not 0.0 <= self.rare_class_probability <= 1.0:
            raise ValueError(f"rare_class_probability must be in [0, 1], got {self.rare_class_probability}")
        if not 0.0 <= self.color_jitter < 1.0:
            raise ValueError(f"color_jitter must be in [0, 1), got {self.color_jitter}")
        steps = int(round((high - low) / self.scale_step))
        self.scales = low + self.scale_step * np.arange(steps + 1)

    def __call__(
        self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """`image`: `(H, W, 3 or 4)` uint8 (RGBA is faster), `label`: `(H, W)` uint8.

        Returns `(crop_h, crop_w, 3)` uint8 RGB padded with `PAD_COLOUR`, `(crop_h, crop_w)` uint8 labels padded
        with `ignore_index`, and the `(height, width)` of the unpadded top-left part.
        """
        height, width = label.shape
        scale = float(rng.choice(self.scales)) * self.base_size / max(width, height)
        scaled_w, scaled_h = max(1, int(width * scale + 0.5)), max(1, int(height * scale + 0.5))
        crop_h, crop_w = self.crop_size
        if self.rare_class_probability > 0 and rng.random() < self.rare_class_probability:
            top, left = self.crop_around_a_class(label, (scaled_h, scaled_w), rng)
        else:
            top, left = self.crop_anywhere((scaled_h, scaled_w), rng)
        flipped = self.flip and rng.random() < 0.5
        valid_h, valid_w = min(crop_h, scaled_h - top), min(crop_w, scaled_w - left)

        # Crop pixel (i, j) samples scaled pixel (top + i, left + j), or (top + i, left + valid_w - 1 - j) when
        # flipped. An affine map carries the fractional source offset exactly; BORDER_REPLICATE clamps at the
        # edges as cv2.resize does.
        step_x, step_y = width / scaled_w, height / scaled_h
        first_x = left + valid_w - 1 if flipped else left
        matrix = np.array(
            [
                [-step_x if flipped else step_x, 0.0, (first_x + 0.5) * step_x - 0.5],
                [0.0, step_y, (top + 0.5) * step_y - 0.5],
            ]
        )
        pixels = cv2.warpAffine(
            image,
            matrix,
            (valid_w, valid_h),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        if pixels.shape[2] == 4:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_RGBA2RGB)
        if self.color_jitter > 0:
            pixels = jitter_colors(pixels, rng.uniform(1 - self.color_jitter, 1 + self.color_jitter, size=3))

        # Two gathers with Pillow's NEAREST indices: faster than warpAffine and bit-identical to PIL's resize.
        rows = nearest_indices(height, scaled_h)[top : top + valid_h]
        cols = nearest_indices(width, scaled_w)[left : left + valid_w]
        labels = np.take(np.take(label, rows, axis=0), cols[::-1] if flipped else cols, axis=1)

        if (valid_h, valid_w) != (crop_h, crop_w):  # pad bottom/right, one pass each
            pad = (0, crop_h - valid_h, 0, crop_w - valid_w)
            pixels = cv2.copyMakeBorder(pixels, *pad, cv2.BORDER_CONSTANT, value=PAD_COLOUR)
            labels = cv2.copyMakeBorder(labels, *pad, cv2.BORDER_CONSTANT, value=self.ignore_index)
        return pixels, labels, (valid_h, valid_w)

    def crop_anywhere(self, scaled_size: tuple[int, int], rng: np.random.Generator) -> tuple[int, int]:
        """`(top, left)` of a crop drawn uniformly over the scaled image (0 where the crop is larger)."""
        (scaled_h, scaled_w), (crop_h, crop_w) = scaled_size, self.crop_size
        return int(rng.integers(0, max(scaled_h - crop_h, 0) + 1)), int(rng.integers(0, max(scaled_w - crop_w, 0) + 1))

    def crop_around_a_class(
        self, label: np.ndarray, scaled_size: tuple[int, int], rng: np.random.Generator
    ) -> tuple[int, int]:
        """`(top, left)` of a crop of the scaled image that contains a pixel of a class drawn uniformly from the
        classes present in `label` (`(H, W)` uint8); anywhere when the image holds only ignored pixels."""
        counts = np.bincount(label.ravel(), minlength=256)
        counts[self.ignore_index] = 0
        present = np.flatnonzero(counts)
        (scaled_h, scaled_w), (crop_h, crop_w) = scaled_size, self.crop_size
        if present.size == 0:
            return self.crop_anywhere(scaled_size, rng)
        chosen = present[rng.integers(present.size)]
        positions = np.flatnonzero(label.ravel() == chosen)
        row, col = divmod(int(positions[rng.integers(positions.size)]), label.shape[1])
        height, width = label.shape
        # The pixel's position in the scaled image, then every crop offset that keeps it inside the crop.
        scaled_row = min(int((row + 0.5) * scaled_h / height), scaled_h - 1)
        scaled_col = min(int((col + 0.5) * scaled_w / width), scaled_w - 1)
        top = rng.integers(max(0, scaled_row - crop_h + 1), min(scaled_row, max(scaled_h - crop_h, 0)) + 1)
        left = rng.integers(max(0, scaled_col - crop_w + 1), min(scaled_col, max(scaled_w - crop_w, 0)) + 1)
        return int(top), int(left)


# ITU-R BT.601 luma weights (those of PIL's "L" mode and torchvision's grayscale).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def jitter_colors(pixels: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` uint8 with brightness, contrast and saturation scaled by `factors` (in that order), uint8 out."""
    brightness, contrast, saturation = (float(f) for f in factors)
    values = np.clip(pixels.astype(np.float32) * brightness, 0, 255)
    grey_mean = float((values @ _LUMA).mean())
    values = np.clip((values - grey_mean) * contrast + grey_mean, 0, 255)
    grey = (values @ _LUMA)[..., None]
    values = (values - grey) * saturation + grey
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)
