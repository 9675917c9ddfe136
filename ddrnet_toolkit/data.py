"""The training and evaluation data pipeline of the original recipe, run in DataLoader workers.

Training: scale the long side to `base_size * s` with `s` drawn from {0.5, 0.6, ..., 2.0} (the original's
`0.5 + randint(0, 16) / 10`), pad (images with 0 after normalization, labels with 255) and randomly crop to
`crop_size`, flip horizontally with probability 0.5, normalize with the ImageNet statistics. Labels are resized
with nearest-neighbour interpolation. Evaluation: the full image, normalized.

Every random draw comes from a generator seeded by `(seed, draw)`, where the sampler's `draw = epoch * N + index`,
so a sample's augmentation does not depend on worker count or scheduling, and a resumed run repeats it exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from dataset_builders.cityscapes.labels import IGNORE_INDEX

# The statistics DDRNetImageProcessor normalizes with, so that training and inference see the same inputs.
IMAGENET_MEAN = np.array(IMAGENET_DEFAULT_MEAN, dtype=np.float32)
IMAGENET_STD = np.array(IMAGENET_DEFAULT_STD, dtype=np.float32)


def normalize(image: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` uint8 -> `(3, H, W)` float32, ImageNet-normalized."""
    scale = 1.0 / (255.0 * IMAGENET_STD)
    return (image.astype(np.float32) * scale - IMAGENET_MEAN / IMAGENET_STD).transpose(2, 0, 1)


@dataclass
class TrainAugmentation:
    """Random scale, pad, crop and flip, then normalize (see the module docstring)."""

    crop_size: tuple[int, int] = (1024, 1024)
    base_size: int = 2048
    scale_range: tuple[float, float] = (0.5, 2.0)
    scale_step: float = 0.1
    flip: bool = True

    def __post_init__(self) -> None:
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(f"scale_range must satisfy 0 < min <= max, got {self.scale_range}")
        if min(self.crop_size) < 1 or self.base_size < 1:
            raise ValueError(f"crop_size and base_size must be positive, got {self.crop_size}, {self.base_size}")
        steps = int(round((high - low) / self.scale_step))
        self.scales = low + self.scale_step * np.arange(steps + 1)

    def __call__(
        self, image: Image.Image, label: Image.Image, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Returns `(3, crop_h, crop_w)` float32 pixels and `(crop_h, crop_w)` uint8 labels."""
        width, height = image.size
        scale = float(rng.choice(self.scales)) * self.base_size / max(width, height)
        size = (max(1, int(width * scale + 0.5)), max(1, int(height * scale + 0.5)))
        image = np.asarray(image.convert("RGB").resize(size, Image.BILINEAR))
        label = np.asarray(label.resize(size, Image.NEAREST))

        crop_h, crop_w = self.crop_size
        top = int(rng.integers(0, max(size[1] - crop_h, 0) + 1))
        left = int(rng.integers(0, max(size[0] - crop_w, 0) + 1))
        image = image[top : top + crop_h, left : left + crop_w]
        label = label[top : top + crop_h, left : left + crop_w]
        if self.flip and rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]

        # Pad bottom/right where the scaled image is smaller than the crop.
        pixels = np.zeros((3, crop_h, crop_w), dtype=np.float32)
        labels = np.full((crop_h, crop_w), IGNORE_INDEX, dtype=np.uint8)
        pixels[:, : image.shape[0], : image.shape[1]] = normalize(image)
        labels[: label.shape[0], : label.shape[1]] = label
        return pixels, labels


def eval_transform(image: Image.Image, label: Image.Image | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The full image, normalized; the label as uint8 train ids."""
    pixels = normalize(np.asarray(image.convert("RGB")))
    return pixels, None if label is None else np.asarray(label, dtype=np.uint8)


class TrainDataset(Dataset):
    """Wraps a split with `image` and `label` columns; indexed by the sampler's draw numbers."""

    def __init__(self, split, augmentation: TrainAugmentation, seed: int = 0):
        self.split = split
        self.augmentation = augmentation
        self.seed = seed

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, draw: int) -> dict[str, torch.Tensor]:
        row = self.split[draw % len(self.split)]
        rng = np.random.default_rng([self.seed, draw])
        pixels, labels = self.augmentation(row["image"], row["label"], rng)
        return {"pixel_values": torch.from_numpy(pixels), "labels": torch.from_numpy(labels.astype(np.int64))}


class EvalDataset(Dataset):
    """Full-resolution evaluation samples; `labels` is absent for unlabeled splits."""

    def __init__(self, split):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self.split[index]
        pixels, labels = eval_transform(row["image"], row.get("label"))
        sample = {"pixel_values": torch.from_numpy(pixels), "index": torch.tensor(index)}
        if labels is not None:
            sample["labels"] = torch.from_numpy(labels.astype(np.int64))
        return sample


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
    """Shuffled, seeded training batches; augmentation runs in persistent, prefetching workers."""
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
