"""Throughput of the training data pipeline, per worker and through DataLoaders, against the original DDRNet
code's pipeline (cv2 decode, whole-image resize, float32) on the same images."""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import datasets
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from dataset_builders.cityscapes import load_cityscapes
from dataset_builders.cityscapes.synthetic import make_synthetic_cityscapes
from dataset_builders.label_space import IGNORE_INDEX

from ..data.augmentation import TrainAugmentation
from ..data.decoding import decode_image, decode_label, stored_bytes, undecoded
from ..data.loaders import EpochShuffleSampler, TrainDataset
from ..data.normalization import normalize
from .timing import Measurement


def original_code_sample(augmentation: TrainAugmentation, image: bytes, label: bytes, rng) -> dict:
    """The original DDRNet/HRNet code's way (cv2 decode, cv2.resize of the whole image, crop, float32 normalize,
    flip), with this project's draws."""
    image = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR_RGB)
    label = cv2.imdecode(np.frombuffer(label, np.uint8), cv2.IMREAD_UNCHANGED)
    height, width = label.shape
    scale = float(rng.choice(augmentation.scales)) * augmentation.base_size / max(width, height)
    size = (max(1, int(width * scale + 0.5)), max(1, int(height * scale + 0.5)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
    crop_h, crop_w = augmentation.crop_size
    top = int(rng.integers(0, max(size[1] - crop_h, 0) + 1))
    left = int(rng.integers(0, max(size[0] - crop_w, 0) + 1))
    pixels = np.zeros((3, crop_h, crop_w), dtype=np.float32)
    labels = np.full((crop_h, crop_w), IGNORE_INDEX, dtype=np.uint8)
    crop = image[top : top + crop_h, left : left + crop_w]
    pixels[:, : crop.shape[0], : crop.shape[1]] = normalize(crop)
    labels[: crop.shape[0], : crop.shape[1]] = label[top : top + crop_h, left : left + crop_w]
    if augmentation.flip and rng.random() < 0.5:
        pixels, labels = pixels[:, :, ::-1].copy(), labels[:, ::-1].copy()
    return {"pixel_values": torch.from_numpy(pixels), "labels": torch.from_numpy(labels.astype(np.int64))}


class BytesPipelineDataset(Dataset):
    """A split's stored image and label bytes through `pipeline(augmentation, image, label, rng)`, seeded per draw
    as `TrainDataset` is."""

    def __init__(self, split, pipeline: Callable, augmentation: TrainAugmentation, seed: int = 0):
        self.split, self.pipeline, self.augmentation, self.seed = undecoded(split), pipeline, augmentation, seed

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, draw: int) -> dict:
        row = self.split[draw % len(self.split)]
        image, label = stored_bytes(row["image"]), stored_bytes(row["label"])
        return self.pipeline(self.augmentation, image, label, np.random.default_rng([self.seed, draw]))


def decode_only(augmentation: TrainAugmentation, image: bytes, label: bytes, rng) -> tuple:
    return decode_image(image, alpha=True), decode_label(label)


def loader_throughput(dataset: Dataset, batch_size: int, num_workers: int, epochs: int) -> float:
    """Seconds per image through a DataLoader (persistent, prefetching workers) feeding a consumer that only
    touches each batch; the first batch, which includes the workers' start, is not timed."""
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochShuffleSampler(len(dataset)),
        drop_last=True,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        prefetch_factor=2 if num_workers > 0 else None,
    )
    count, start = 0, None
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            batch["pixel_values"].view(-1)[0].item()
            if start is None:
                start = time.perf_counter()
            else:
                count += batch_size
    return (time.perf_counter() - start) / count


def original_files(root: Path, split: datasets.Dataset) -> datasets.Dataset:
    """`split` (of the synthetic Cityscapes under `root`) with the image files' own bytes instead of the
    uncompressed PNGs the builder stores for training."""
    paths = [line.split()[0] for line in (root / "lists" / "train.lst").read_text().splitlines()]
    images = [{"bytes": (root / path).read_bytes(), "path": None} for path in paths]
    split = split.remove_columns("image").add_column("image", images)
    return split.cast_column("image", datasets.Image(decode=False))


def measure_data_pipeline(
    num_images: int = 8,
    height: int = 1024,
    width: int = 2048,
    crop: int = 1024,
    rounds: int = 3,
    batch_size: int = 4,
    workers: tuple[int, ...] = (1, 2),
) -> list[Measurement]:
    """Images per second of the training data pipelines on a synthetic Cityscapes: noise-textured PNGs, about
    4.6 MB each at 2048x1024 as real photos compress, and the uncompressed PNGs the builder stores from them.

    Per worker (one process, one thread, best of `rounds` interleaved passes): the original code's pipeline on the
    PNG files, this one on the PNG files and on the stored bytes (the training read path), and its decoding alone.
    Then a DataLoader with each number of `workers` feeding a consumer that only touches the batch, for the original
    code's pipeline and this one, each on what it reads in training.
    """
    with tempfile.TemporaryDirectory() as tmp:
        make_synthetic_cityscapes(tmp, num_train=num_images, num_val=0, num_test=0, height=height, width=width)
        stored = undecoded(load_cityscapes(tmp, cache_dir=f"{tmp}/cache")["train"])
        files = original_files(Path(tmp), stored)
        inputs = {}
        for name, split in (("PNG", files), ("stored PNG", stored)):
            megabytes = np.mean([len(stored_bytes(value)) for value in split["image"]]) / 1e6
            inputs[name] = f"{width}x{height} {name}, {megabytes:.1f} MB"
        augmentation = TrainAugmentation(crop_size=(crop, crop), base_size=max(height, width))
        crop_name = f"({crop}x{crop})"
        pipelines = [  # (name, input, dataset)
            (
                f"original code: cv2, whole-image resize, float32 {crop_name}",
                inputs["PNG"],
                BytesPipelineDataset(files, original_code_sample, augmentation),
            ),
            (f"this: libspng, crop-first, uint8 {crop_name}", inputs["PNG"], TrainDataset(files, augmentation)),
            (f"this: libspng, crop-first, uint8 {crop_name}", inputs["stored PNG"], TrainDataset(stored, augmentation)),
            (
                "this, decoding only (image + label)",
                inputs["stored PNG"],
                BytesPipelineDataset(stored, decode_only, augmentation),
            ),
        ]
        timed = per_worker_seconds(
            {index: dataset for index, (_, _, dataset) in enumerate(pipelines)}, num_images, rounds
        )
        best = [timed[index] for index in range(len(pipelines))]
        rows = [
            Measurement("data (1 worker)", "-", name, "cpu", shape, seconds, 1 / seconds)
            for (name, shape, _), seconds in zip(pipelines, best, strict=True)
        ]
        for num_workers in workers:
            task = f"data (DataLoader, {num_workers} worker{'s' if num_workers > 1 else ''}, batch {batch_size})"
            for name, shape, dataset in pipelines[0], pipelines[2]:
                seconds = loader_throughput(dataset, batch_size, num_workers, epochs=max(2, rounds))
                rows.append(Measurement(task, "-", name, "cpu", shape, seconds, 1 / seconds))
        return rows


def per_worker_seconds(datasets_by_name: dict[str, Dataset], num_images: int, rounds: int) -> dict[str, float]:
    """Seconds per sample of each dataset in one process and one thread, as in a DataLoader worker: best of
    `rounds` interleaved passes over its first `num_images` draws."""
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = dict.fromkeys(datasets_by_name, float("inf"))
        for _ in range(rounds):
            for name, dataset in datasets_by_name.items():
                dataset[0]
                start = time.perf_counter()
                for draw in range(num_images):
                    dataset[draw]
                best[name] = min(best[name], (time.perf_counter() - start) / num_images)
    finally:
        torch.set_num_threads(torch_threads)
    return best


def measure_against_synthetic(
    split: datasets.Dataset, name: str, crop: int, num_images: int = 16, rounds: int = 3
) -> list[Measurement]:
    """The training pipeline and its decoding on a dataset's own training images (what the builder stores) beside a
    synthetic Cityscapes of the same image size: what real photos change in a worker's time."""
    stored = undecoded(split)
    width, height = Image.open(io.BytesIO(stored_bytes(stored[0]["image"]))).size
    num_images = min(num_images, len(stored))
    with tempfile.TemporaryDirectory() as tmp:
        make_synthetic_cityscapes(tmp, num_train=num_images, num_val=0, num_test=0, height=height, width=width)
        synthetic = undecoded(load_cityscapes(tmp, cache_dir=f"{tmp}/cache")["train"])
        augmentation = TrainAugmentation(crop_size=(crop, crop), base_size=max(height, width))
        inputs = {}
        for label, rows in ((name, stored), ("synthetic", synthetic)):
            megabytes = np.mean([len(stored_bytes(rows[i]["image"])) for i in range(num_images)]) / 1e6
            inputs[label] = (f"{width}x{height} {label}, stored PNG {megabytes:.2f} MB", rows)
        pipelines = {}
        for shape, rows in inputs.values():
            pipelines[(f"this: libspng, crop-first, uint8 ({crop}x{crop})", shape)] = TrainDataset(rows, augmentation)
            pipelines[("this, decoding only (image + label)", shape)] = BytesPipelineDataset(
                rows, decode_only, augmentation
            )
        seconds = per_worker_seconds(pipelines, num_images, rounds)
    return [
        Measurement("data (1 worker)", "-", mode, "cpu", shape, value, 1 / value)
        for (mode, shape), value in seconds.items()
    ]
