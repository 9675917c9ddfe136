"""How time and memory grow with the work, measured in one run: inference vs resolution (whole images, then
sliding windows beyond), a training step vs crop and batch, evaluation vs number of images, dataset preparation
vs rows and processes, the training images' storage (disk and decoding speed), and DataLoader throughput vs
workers; each with the straight line fitted through it (time per megapixel, per image, per row).

Times are the best of `rounds` passes, interleaved where rows are compared (see `timing.best_times`); peak memory
is `memory.measure_peak_memory`'s (the process's peak RSS on the CPU).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from PIL import Image

from dataset_builders.cityscapes import Cityscapes
from dataset_builders.cityscapes.synthetic import make_synthetic_cityscapes
from dataset_builders.split_files import prepare_splits

from ..data.augmentation import TrainAugmentation
from ..data.loaders import TrainDataset
from ..evaluation.scoring import evaluate_split
from ..inference.segmentation import predict_probabilities
from .data_pipeline import loader_throughput, per_worker_seconds
from .memory import measure_peak_memory
from .models import build_model, training_step
from .timing import best_times


@dataclass(frozen=True)
class ScalingPlan:
    """What a scaling run measures. Sizes are `(height, width)`."""

    variant: str = "ddrnet-23-slim"
    resolutions: tuple[tuple[int, int], ...] = ((256, 512), (512, 1024), (1024, 2048), (2048, 4096))
    window: tuple[int, int] = (1024, 2048)
    sliding_resolutions: tuple[tuple[int, int], ...] = ((2048, 4096), (4096, 8192))
    train_crops: tuple[int, ...] = (256, 512, 768, 1024)
    train_crop_batch: int = 2
    train_batches: tuple[int, ...] = (2, 4, 8)
    train_batch_crop: int = 256
    eval_image_counts: tuple[int, ...] = (4, 8, 16)
    eval_size: tuple[int, int] = (512, 1024)
    preparation_rows: tuple[int, ...] = (8, 16, 32)
    preparation_size: tuple[int, int] = (1024, 2048)
    preparation_processes: tuple[int, ...] = (1, 2)
    loader_workers: tuple[int, ...] = (0, 1, 2, 4)
    loader_batch: int = 4
    loader_crop: int = 1024
    warmup: int = 1
    min_time: float = 0.5
    rounds: int = 3


PLANS = {
    "full": ScalingPlan(),
    # Every study on tiny inputs: checks that the run works end to end, in seconds.
    "smoke": ScalingPlan(
        resolutions=((64, 128), (128, 256)),
        window=(64, 128),
        sliding_resolutions=((128, 256),),
        train_crops=(64, 96),
        train_batches=(2, 3),
        train_batch_crop=64,
        eval_image_counts=(2, 4),
        eval_size=(64, 128),
        preparation_rows=(2, 4),
        preparation_size=(64, 128),
        loader_workers=(0, 1),
        loader_batch=2,
        loader_crop=64,
        warmup=1,
        min_time=0.01,
        rounds=1,
    ),
}


@dataclass
class ScalingRow:
    """One measurement: `size` (megapixels, images, rows or workers, per `size_unit`) is what grows."""

    study: str
    setting: str
    size: float
    size_unit: str
    seconds: float  # per call: an image, a training step, an evaluation, a preparation, a sample
    throughput: float
    throughput_unit: str
    peak_mb: float | None = None
    above_start_mb: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Fit:
    """`value = slope * size + intercept` by least squares over a study's rows; `worst` is the largest relative
    distance of a row from the line."""

    study: str
    quantity: str
    slope: float
    intercept: float
    unit: str
    worst: float


def fit_line(study: str, quantity: str, unit: str, sizes: list[float], values: list[float]) -> Fit:
    slope, intercept = np.polyfit(sizes, values, 1)
    fitted = slope * np.asarray(sizes) + intercept
    worst = float(np.max(np.abs(fitted - values) / np.maximum(np.abs(values), 1e-12)))
    return Fit(study, quantity, float(slope), float(intercept), unit, worst)


def megapixels(height: int, width: int, images: int = 1) -> float:
    return images * height * width / 1e6


def measure_inference(plan: ScalingPlan, device: torch.device) -> list[ScalingRow]:
    """Seconds and peak memory of `predict_probabilities` (probabilities at the input size, as eval and predict
    compute them) on one image, whole and in sliding windows."""
    model = build_model(plan.variant, device, training=False)
    cases = {f"{h}x{w} whole": ((h, w), None) for h, w in plan.resolutions}
    cases |= {
        f"{h}x{w} windows {plan.window[0]}x{plan.window[1]}": ((h, w), plan.window) for h, w in plan.sliding_resolutions
    }

    def step(size: tuple[int, int], window: tuple[int, int] | None) -> Callable[[], object]:
        pixel_values = torch.randn(1, 3, *size, device=device)
        return lambda: predict_probabilities(model, pixel_values, window=window, stride=window)

    steps = {name: step(*case) for name, case in cases.items()}
    memory = {name: measure_peak_memory(steps[name], device) for name in steps}  # also the warm-up
    best = best_times(steps, device, plan.warmup, plan.min_time, plan.rounds)
    rows = []
    for name, (size, _) in cases.items():
        study = "inference (sliding window)" if "windows" in name else "inference (whole image)"
        row = ScalingRow(study, name, megapixels(*size), "MP", best[name], 1 / best[name], "images/s")
        row.peak_mb, row.above_start_mb = memory[name].peak_mb, memory[name].above_start_mb
        row.extra["memory"] = memory[name].how
        rows.append(row)
    return rows


def measure_training(plan: ScalingPlan, device: torch.device) -> list[ScalingRow]:
    """Seconds and peak memory of one full training step (forward with the OHEM loss, backward, SGD), the
    settings timed interleaved."""
    cases = {(plan.train_crop_batch, crop) for crop in plan.train_crops}
    cases |= {(batch, plan.train_batch_crop) for batch in plan.train_batches}
    cases = sorted(cases, key=lambda case: case[0] * case[1] ** 2)
    steps = {case: training_step(plan.variant, "fp32", device, *case) for case in cases}
    memory = {case: measure_peak_memory(step, device) for case, step in steps.items()}  # also the warm-up
    best = best_times(steps, device, plan.warmup, plan.min_time, plan.rounds)
    rows = []
    for batch, crop in cases:
        seconds, peak = best[batch, crop], memory[batch, crop]
        row = ScalingRow(
            "training step",
            f"batch {batch} x {crop}x{crop}",
            megapixels(crop, crop, batch),
            "MP per step",
            seconds,
            batch / seconds,
            "images/s",
            peak.peak_mb,
            peak.above_start_mb,
        )
        rows.append(row)
    return rows


def measure_evaluation(plan: ScalingPlan, device: torch.device, work: Path) -> list[ScalingRow]:
    """Seconds of `evaluate_split` (decoding, forward at full size, confusion matrix) on the first N images of a
    synthetic Cityscapes validation split."""
    height, width = plan.eval_size
    root = work / "evaluation"
    make_synthetic_cityscapes(
        root, num_train=0, num_val=max(plan.eval_image_counts), num_test=0, height=height, width=width
    )
    split = Cityscapes(root, cache_dir=str(work / "evaluation-cache"))
    validation = prepare_splits(split)["validation"]
    model = build_model(plan.variant, device, training=False)
    accelerator = Accelerator(cpu=device.type == "cpu")
    steps = {
        count: (lambda count=count: evaluate_split(model, validation.select(range(count)), accelerator, num_workers=0))
        for count in plan.eval_image_counts
    }
    memory = {count: measure_peak_memory(step, device) for count, step in steps.items()}
    best = best_times(steps, device, 0, 0.0, plan.rounds)
    rows = []
    for count in plan.eval_image_counts:
        row = ScalingRow(
            "evaluation",
            f"{count} images of {height}x{width}",
            count,
            "images",
            best[count],
            count / best[count],
            "images/s",
        )
        row.peak_mb, row.above_start_mb = memory[count].peak_mb, memory[count].above_start_mb
        rows.append(row)
    return rows


def write_lists(root: Path, name: str, images: list[str], labels: list[str]) -> Path:
    """A folder of split files holding only `train.lst` with these lines."""
    lists = root / name
    lists.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{image} {label}\n" for image, label in zip(images, labels, strict=True))
    (lists / "train.lst").write_text(text)
    return lists


def stored_rows(split: datasets.Dataset) -> list[dict]:
    """Every row of a prepared split, images and labels as their stored bytes."""
    split = split.cast_column("image", datasets.Image(decode=False))
    return split.cast_column("label", datasets.Image(decode=False)).to_list()


class PreparationData:
    """A synthetic Cityscapes training split at `size` (noise-textured PNGs, as photos compress), the same images as
    JPEGs (quality 90) beside them, and fresh preparations of any part of it."""

    def __init__(self, work: Path, rows: int, size: tuple[int, int]):
        self.work, self.root, self.count = work, work / "preparation", rows
        make_synthetic_cityscapes(self.root, num_train=rows, num_val=0, num_test=0, height=size[0], width=size[1])
        lines = [line.split() for line in (self.root / "lists" / "train.lst").read_text().splitlines()]
        self.images, self.labels = [line[0] for line in lines], [line[1] for line in lines]
        self.jpegs = [image.removesuffix(".png") + ".jpg" for image in self.images]
        for png, jpeg in zip(self.images, self.jpegs, strict=True):
            Image.open(self.root / png).convert("RGB").save(self.root / jpeg, quality=90)
        self.preparations = 0

    def lists(self, rows: int, jpeg: bool = False) -> Path:
        images = self.jpegs if jpeg else self.images
        return write_lists(self.root, f"lists-{rows}{'-jpeg' if jpeg else ''}", images[:rows], self.labels[:rows])

    def prepare(self, lists: Path, storage: str, processes: int) -> tuple[float, datasets.Dataset, Path, int]:
        """Seconds to prepare the split of `lists` into a new cache, the split, its cache key (the folder the
        builder names after its configuration) and its bytes on disk."""
        self.preparations += 1
        cache = self.work / f"cache-{self.preparations}"
        builder = Cityscapes(self.root, list_dir=lists, image_storage=storage, cache_dir=str(cache))
        start = time.perf_counter()
        split = prepare_splits(builder, num_proc=processes)["train"]
        seconds = time.perf_counter() - start
        disk = sum(path.stat().st_size for path in cache.rglob("*.arrow"))
        return seconds, split, Path(builder.cache_dir).relative_to(cache), disk


def measure_preparation(plan: ScalingPlan, data: PreparationData) -> tuple[list[ScalingRow], dict]:
    """Seconds to prepare N rows with each number of processes (the training images stored uncompressed), the
    settings interleaved; and whether every number of processes prepared the same rows under the same cache key."""
    best: dict[tuple[int, int], float] = {}
    keys, prepared = {}, {}
    for _ in range(plan.rounds):
        for rows in plan.preparation_rows:
            for processes in plan.preparation_processes:
                seconds, split, key, _ = data.prepare(data.lists(rows), "uncompressed", processes)
                best[rows, processes] = min(best.get((rows, processes), float("inf")), seconds)
                if rows == data.count:
                    keys[processes], prepared[processes] = key, stored_rows(split)
    one = min(plan.preparation_processes)
    consistency = {
        "same_rows": all(rows == prepared[one] for rows in prepared.values()),
        "same_cache_key": len(set(keys.values())) == 1,
    }
    height, width = plan.preparation_size
    results = []
    for (rows, processes), seconds in sorted(best.items()):
        study = f"preparation ({processes} process{'es' if processes > 1 else ''})"
        row = ScalingRow(study, f"{rows} rows of {height}x{width}", rows, "rows", seconds, rows / seconds, "rows/s")
        row.extra["speedup"] = best[rows, one] / seconds
        results.append(row)
    return results, consistency


def measure_storage(plan: ScalingPlan, data: PreparationData) -> list[ScalingRow]:
    """For each way of storing the training images (the PNG files uncompressed or as they are, the JPEGs as they
    are): bytes per image, preparation rows/s (one process), the training pipeline's images/s in one worker and
    through DataLoaders; then, on the uncompressed PNGs, DataLoader throughput for each number of workers."""
    storages = {
        "PNG files, stored uncompressed": (data.lists(data.count), "uncompressed"),
        "PNG files, stored as they are": (data.lists(data.count), "original"),
        "JPEG files (q90), stored as they are": (data.lists(data.count, jpeg=True), "original"),
    }
    augmentation = TrainAugmentation(
        crop_size=(plan.loader_crop, plan.loader_crop), base_size=max(plan.preparation_size)
    )
    stored = {name: data.prepare(lists, storage, 1) for name, (lists, storage) in storages.items()}
    samples = {name: TrainDataset(split, augmentation) for name, (_, split, _, _) in stored.items()}
    worker = per_worker_seconds(samples, data.count, plan.rounds)
    loaders = {
        (name, workers): loader_throughput(samples[name], plan.loader_batch, workers, epochs=2)
        for workers in plan.loader_workers
        for name in samples
        if workers > 0 or name == "PNG files, stored uncompressed"
    }
    rows = []
    for name, (seconds, _, _, disk) in stored.items():
        per_sample = worker[name]
        row = ScalingRow("storage", name, data.count, "rows", per_sample, 1 / per_sample, "images/s per worker")
        row.extra["mb_per_image"] = disk / data.count / 1e6
        row.extra["preparation_rows_per_s"] = data.count / seconds
        row.extra["loader_images_per_s"] = {w: 1 / s for (n, w), s in loaders.items() if n == name and w > 0}
        rows.append(row)
    for workers in plan.loader_workers:
        per_image = loaders["PNG files, stored uncompressed", workers]
        setting = f"{workers} worker{'s' if workers != 1 else ''}, batch {plan.loader_batch}, crop {plan.loader_crop}"
        rows.append(ScalingRow("data loading", setting, workers, "workers", per_image, 1 / per_image, "images/s"))
    return rows


def fits(rows: list[ScalingRow]) -> list[Fit]:
    """The straight lines through each study whose cost should grow linearly with its size."""
    found = []
    for study, quantity, unit in (
        ("inference (whole image)", "seconds", "s per MP"),
        ("inference (whole image)", "above_start_mb", "MB per MP"),
        ("inference (sliding window)", "seconds", "s per MP"),
        ("inference (sliding window)", "above_start_mb", "MB per MP"),
        ("training step", "seconds", "s per MP of batch"),
        ("training step", "above_start_mb", "MB per MP of batch"),
        ("evaluation", "seconds", "s per image"),
        *((f"preparation ({p} process{'es' if p > 1 else ''})", "seconds", "s per row") for p in (1, 2, 4, 8)),
    ):
        chosen = [row for row in rows if row.study == study and getattr(row, quantity) is not None]
        if len(chosen) >= 2:
            found.append(
                fit_line(
                    study, quantity, unit, [row.size for row in chosen], [getattr(row, quantity) for row in chosen]
                )
            )
    return found


def measure_scaling(plan: ScalingPlan, device: torch.device, studies: tuple[str, ...]) -> dict:
    """Every study of `plan` named in `studies` (inference, training, evaluation, preparation) on `device`;
    preparation, with the storage and data-loading studies, runs on the CPU."""
    datasets.disable_progress_bars()
    rows: list[ScalingRow] = []
    same = None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "inference" in studies:
            rows += measure_inference(plan, device)
        if "training" in studies:
            rows += measure_training(plan, device)
        if "evaluation" in studies:
            rows += measure_evaluation(plan, device, work)
        if "preparation" in studies:
            data = PreparationData(work, max(plan.preparation_rows), plan.preparation_size)
            prepared, same = measure_preparation(plan, data)
            rows += prepared + measure_storage(plan, data)
    return {"plan": asdict(plan), "rows": rows, "fits": fits(rows), "preparation_consistency": same}


def markdown(results: dict) -> str:
    """The studies' tables, the fitted lines, and the storage trade-off."""
    rows, parts = results["rows"], []
    timed = [row for row in rows if row.study != "storage"]
    lines = [
        "| study | setting | size | time | throughput | peak MB | above start MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in timed:
        peak = "-" if row.peak_mb is None else f"{row.peak_mb:.0f}"
        above = "-" if row.above_start_mb is None else f"{row.above_start_mb:.0f}"
        speedup = f" ({row.extra['speedup']:.2f}x)" if "speedup" in row.extra else ""
        lines.append(
            f"| {row.study} | {row.setting} | {row.size:g} {row.size_unit} | {format_seconds(row.seconds)} | "
            f"{row.throughput:.2f} {row.throughput_unit}{speedup} | {peak} | {above} |"
        )
    parts.append("\n".join(lines))
    storage = [row for row in rows if row.study == "storage"]
    if storage:
        workers = sorted({w for row in storage for w in row.extra["loader_images_per_s"]})
        header = (
            "| training images | MB per image | preparation rows/s | images/s, 1 worker (no DataLoader) | "
            + " | ".join(f"DataLoader, {w} worker{'s' if w > 1 else ''}" for w in workers)
            + " |"
        )
        lines = [header, "|" + "---|" * (4 + len(workers))]
        for row in storage:
            loaders = " | ".join(f"{row.extra['loader_images_per_s'][w]:.1f}" for w in workers)
            extra = row.extra
            lines.append(
                f"| {row.setting} | {extra['mb_per_image']:.2f} | {extra['preparation_rows_per_s']:.2f} | "
                f"{row.throughput:.1f} | {loaders} |"
            )
        parts.append("\n".join(lines))
    lines = ["| study | what | fitted growth | at 0 | worst row off the line |", "|---|---|---|---|---|"]
    for fit in results["fits"]:
        value = format_seconds(fit.slope) if fit.quantity == "seconds" else f"{fit.slope:.0f} MB"
        at_zero = format_seconds(fit.intercept) if fit.quantity == "seconds" else f"{fit.intercept:.0f} MB"
        what = "time" if fit.quantity == "seconds" else "memory above start"
        lines.append(
            f"| {fit.study} | {what} | {value} {fit.unit.split(' ', 1)[1]} | {at_zero} | {100 * fit.worst:.0f}% |"
        )
    parts.append("\n".join(lines))
    same = results["preparation_consistency"]
    if same is not None:
        parts.append(
            f"Preparation with every number of processes: same rows {'yes' if same['same_rows'] else 'NO'}, same cache "
            f"key (fingerprint) {'yes' if same['same_cache_key'] else 'NO'}."
        )
    return "\n\n".join(parts)


def format_seconds(seconds: float) -> str:
    return f"{seconds:.2f} s" if abs(seconds) >= 1 else f"{1000 * seconds:.1f} ms"


def as_json(results: dict) -> dict:
    return {
        **results,
        "rows": [asdict(row) for row in results["rows"]],
        "fits": [asdict(fit) for fit in results["fits"]],
    }
