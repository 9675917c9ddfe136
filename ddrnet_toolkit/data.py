"""The training and evaluation data pipeline of the original recipe: uint8 in the workers, floats on the device.

Training: scale the long side to `base_size * s` with `s` drawn from {0.5, 0.6, ..., 2.0} (the original's
`0.5 + randint(0, 16) / 10`), pad (images with 0 after normalization, labels with the ignore value, 255 by
default) and randomly crop to `crop_size`, flip horizontally with probability 0.5. Evaluation: the full image.
Workers decode the stored PNG bytes (libspng through `pyspng`, OpenCV for other formats) and send uint8 images and
labels, 4x and 8x fewer bytes than float32 pixels and int64 labels; `normalize_on_device` applies the ImageNet
statistics, the int64 cast and the memory format where the model runs.

Only the crop is ever computed: each crop pixel is mapped back to the source image with the half-pixel-centre
convention of `cv2.resize` and PIL, `x_source = (x_scaled + 0.5) * width / scaled_width - 0.5`, and sampled there
bilinearly (`cv2.warpAffine`, the flip folded into the matrix). Bilinear does not antialias when it shrinks, as
the original code's `cv2.resize` did not (the previous PIL pipeline did, for s < 1); otherwise the pixels equal a
whole-image `cv2.resize` then crop within one grey level. Labels take nearest neighbours with Pillow's index
arithmetic, so they equal the previous pipeline's bit for bit.

Every random draw comes from a generator seeded by `(seed, draw)`, where the sampler's `draw = epoch * N + index`,
so a sample's augmentation does not depend on worker count or scheduling, and a resumed run repeats it exactly.
The draws (scale, top, left, flip, in that order) are those of the previous pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import datasets
import numpy as np
import pyspng
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from dataset_builders.cityscapes.labels import IGNORE_INDEX

# The statistics DDRNetImageProcessor normalizes with, so that training and inference see the same inputs.
# One OpenCV thread per process: the DataLoader's workers are the parallelism, and a process that forks workers
# while OpenCV's own thread pool is alive (data loaded in the main process, then an evaluation loader) would hang
# them.
cv2.setNumThreads(1)

IMAGENET_MEAN = np.array(IMAGENET_DEFAULT_MEAN, dtype=np.float32)
IMAGENET_STD = np.array(IMAGENET_DEFAULT_STD, dtype=np.float32)
# `normalize` as a multiply and a subtract, in the same float32 order on the host and on the device.
_SCALE = 1.0 / (255.0 * IMAGENET_STD)
_SHIFT = IMAGENET_MEAN / IMAGENET_STD
# The uint8 colour nearest to the mean: padding normalizes to within 0.006 of 0 even before it is zeroed exactly.
PAD_COLOUR = tuple(int(v) for v in np.round(IMAGENET_MEAN * 255))
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def normalize(image: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` uint8 -> `(3, H, W)` float32, ImageNet-normalized."""
    return (image.astype(np.float32) * _SCALE - _SHIFT).transpose(2, 0, 1)


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


class TrainDataset(Dataset):
    """Wraps a split with `image` and `label` columns; indexed by the sampler's draw numbers."""

    def __init__(self, split: datasets.Dataset, augmentation: TrainAugmentation, seed: int = 0):
        self.split = undecoded(split)
        self.augmentation = augmentation
        self.seed = seed

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, draw: int) -> dict[str, torch.Tensor]:
        """`pixel_values` `(crop_h, crop_w, 3)` uint8, `labels` `(crop_h, crop_w)` uint8, `valid_size` `(2,)`."""
        row = self.split[draw % len(self.split)]
        rng = np.random.default_rng([self.seed, draw])
        image = image_pixels(row["image"], alpha=True)
        pixels, labels, valid_size = self.augmentation(image, label_values(row["label"]), rng)
        return {
            "pixel_values": torch.from_numpy(pixels),
            "labels": torch.from_numpy(labels),
            "valid_size": torch.tensor(valid_size),
        }


class EvalDataset(Dataset):
    """Full-resolution evaluation samples, uint8 like `TrainDataset`'s; `labels` is absent for unlabeled splits."""

    def __init__(self, split: datasets.Dataset):
        self.split = undecoded(split)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """`pixel_values` `(H, W, 3)` uint8, `labels` `(H, W)` uint8 train ids, `index` `()`."""
        row = self.split[index]
        sample = {
            "pixel_values": torch.from_numpy(image_pixels(row["image"])),
            "index": torch.tensor(index),
        }
        if row.get("label") is not None:
            sample["labels"] = torch.from_numpy(label_values(row["label"]))
        return sample


class PadToLargest:
    """DataLoader `collate_fn` for images of different sizes (ADE20K, say): pads each sample at the bottom and right
    to the batch's largest height and width, labels with `ignore_index` (never scored) and `valid_size` recording
    the unpadded size (`normalize_on_device` zeroes the padding, as the training crops' padding). Equal sizes stack
    as they are. The model sees the padding, so predictions near a padded edge can differ slightly from batch 1."""

    def __init__(self, ignore_index: int = IGNORE_INDEX):
        self.ignore_index = ignore_index

    def __call__(self, samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        height = max(sample["pixel_values"].shape[0] for sample in samples)
        width = max(sample["pixel_values"].shape[1] for sample in samples)
        batch = {"index": torch.stack([sample["index"] for sample in samples])}
        batch["valid_size"] = torch.tensor([tuple(sample["pixel_values"].shape[:2]) for sample in samples])
        pixels = torch.zeros((len(samples), height, width, 3), dtype=torch.uint8)
        for row, sample in zip(pixels, samples, strict=True):
            row[: sample["pixel_values"].shape[0], : sample["pixel_values"].shape[1]] = sample["pixel_values"]
        batch["pixel_values"] = pixels
        if "labels" in samples[0]:
            labels = torch.full((len(samples), height, width), self.ignore_index, dtype=torch.uint8)
            for row, sample in zip(labels, samples, strict=True):
                row[: sample["labels"].shape[0], : sample["labels"].shape[1]] = sample["labels"]
            batch["labels"] = labels
        return batch


def normalize_on_device(
    batch: dict[str, torch.Tensor], channels_last: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A uint8 batch of `TrainDataset` or `EvalDataset`, on any device, -> the model's inputs there.

    Returns `(B, 3, H, W)` float32 pixels, ImageNet-normalized as `normalize` does (same float32 operations, so
    the same values), with the padding outside `valid_size` exactly 0, in channels_last memory when asked; and
    `(B, H, W)` int64 labels (None when the batch has none).
    """
    pixels = batch["pixel_values"].permute(0, 3, 1, 2)  # NHWC memory seen as NCHW: a channels_last view
    scale = torch.from_numpy(_SCALE).to(pixels.device).view(1, 3, 1, 1)
    shift = torch.from_numpy(_SHIFT).to(pixels.device).view(1, 3, 1, 1)
    pixels = pixels.float() * scale - shift
    if "valid_size" in batch:
        valid_size = batch["valid_size"].to(pixels.device)
        rows = torch.arange(pixels.shape[2], device=pixels.device).view(1, -1, 1)
        cols = torch.arange(pixels.shape[3], device=pixels.device).view(1, 1, -1)
        inside = (rows < valid_size[:, 0].view(-1, 1, 1)) & (cols < valid_size[:, 1].view(-1, 1, 1))
        pixels = pixels.masked_fill(~inside.unsqueeze(1), 0.0)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    labels = batch.get("labels")
    return pixels.contiguous(memory_format=memory_format), None if labels is None else labels.long()


class EpochShuffleSampler(Sampler[int]):
    """A seeded permutation per epoch, yielding draw numbers `epoch * N + index` (see `TrainDataset`)."""

    def __init__(self, num_samples: int, seed: int = 0):
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_samples)
        yield from (self.epoch * self.num_samples + order).tolist()


def train_dataloader(
    split, augmentation: TrainAugmentation, batch_size: int, num_workers: int, seed: int, pin_memory: bool
) -> DataLoader:
    """Shuffled, seeded uint8 training batches (see `normalize_on_device`); augmentation runs in persistent,
    prefetching workers."""
    return DataLoader(
        TrainDataset(split, augmentation, seed=seed),
        batch_size=batch_size,
        sampler=EpochShuffleSampler(len(split), seed=seed),
        drop_last=True,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        prefetch_factor=4 if num_workers > 0 else None,
    )
