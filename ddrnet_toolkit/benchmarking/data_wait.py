"""Whether training waits for its data: the time of a training step fed by the real loader (train.py's workers,
augmentation and pinned memory) against the same batches replayed from the device's memory."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass

import datasets
import torch
from torch.utils.data import DataLoader

from ..data.augmentation import TrainAugmentation
from ..data.loaders import train_dataloader
from ..data.normalization import normalize_on_device
from ..devices import pins_memory
from .models import batch_training_step, build_model
from .timing import synchronize

# A step this much slower with the loader than from device memory counts as waiting for data.
WAITING_RATIO = 1.1


@dataclass(frozen=True)
class DataWait:
    loader_seconds: float  # per training step, batches from the loader
    held_seconds: float  # per training step, the same batches already on the device
    num_workers: int
    pinned: bool

    @property
    def ratio(self) -> float:
        return self.loader_seconds / self.held_seconds

    @property
    def waits(self) -> bool:
        return self.ratio > WAITING_RATIO


def epochs_of(loader: DataLoader) -> Iterator[dict[str, torch.Tensor]]:
    """The loader's batches epoch after epoch, each epoch in its own seeded order (as train.py iterates)."""
    for epoch in itertools.count():
        loader.sampler.set_epoch(epoch)
        yield from loader


def measure_data_wait(
    split: datasets.Dataset,
    variant: str,
    device: torch.device,
    *,
    batch_size: int,
    crop: int,
    base_size: int,
    num_workers: int,
    num_batches: int,
    dtype: torch.dtype | None,
    warmup: int = 2,
) -> DataWait:
    """Train `variant` (channels_last, autocast to `dtype` when given) for `num_batches` steps on batches of
    train.py's loader, then again on the same batches kept on the device; seconds per step of each. The first
    `warmup` batches (workers starting, cuDNN autotuning) are not timed."""
    augmentation = TrainAugmentation(crop_size=(crop, crop), base_size=base_size)
    loader = train_dataloader(split, augmentation, batch_size, num_workers, seed=0, pin_memory=pins_memory(device))
    mode = "channels_last" if dtype is None else "channels_last_amp"
    step = batch_training_step(build_model(variant, device, training=True), mode, device, dtype)

    def to_device(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {key: value.to(device, non_blocking=True) for key, value in batch.items()}

    def train_on(batch: dict[str, torch.Tensor]) -> None:
        step(*normalize_on_device(batch, channels_last=True))

    batches = epochs_of(loader)
    for _ in range(warmup):
        train_on(to_device(next(batches)))
    synchronize(device)
    held = []
    start = time.perf_counter()
    for _ in range(num_batches):
        held.append(to_device(next(batches)))
        train_on(held[-1])
    synchronize(device)
    loader_seconds = (time.perf_counter() - start) / num_batches
    start = time.perf_counter()
    for batch in held:
        train_on(batch)
    synchronize(device)
    held_seconds = (time.perf_counter() - start) / num_batches
    return DataWait(loader_seconds, held_seconds, num_workers, loader.pin_memory)
