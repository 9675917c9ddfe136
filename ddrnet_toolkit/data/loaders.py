"""Datasets, sampler and collation that feed training and evaluation uint8 batches.

Every random draw of a training sample comes from a generator seeded by `(seed, draw)`, where the sampler's
`draw = epoch * N + index`, so a sample's augmentation does not depend on worker count or scheduling, and a
resumed run repeats it exactly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import datasets
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dataset_builders.label_space import IGNORE_INDEX

from .augmentation import TrainAugmentation
from .decoding import image_pixels, label_values, undecoded


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


def default_num_workers() -> int:
    """train.py's DataLoader workers: one per CPU core, at most 8 (the augmentation of 8 images per GPU step)."""
    return min(8, os.cpu_count() or 1)


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
