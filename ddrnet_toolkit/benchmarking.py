"""Speed measurements: inference and training modes, the data pipeline and the metric, timed the paper's way.

Timing (as DDRNet's own speed script): warm up, then double the iteration count until one run lasts at least
`min_time` seconds, synchronizing the device around it; report the mean time of that run.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import datasets
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from dataset_builders.cityscapes import load_cityscapes
from dataset_builders.cityscapes.labels import IGNORE_INDEX
from dataset_builders.cityscapes.synthetic import make_synthetic_cityscapes
from modeling_ddrnet import VARIANTS, DDRNetConfig, DDRNetForSemanticSegmentation
from modeling_ddrnet.fast_inference import prepare_for_inference

from .data import (
    EpochShuffleSampler,
    TrainAugmentation,
    TrainDataset,
    decode_image,
    decode_label,
    normalize,
    stored_bytes,
    undecoded,
)
from .evaluation import confusion_matrix as device_confusion_matrix
from .mean_iou.mean_iou import confusion_matrix

if TYPE_CHECKING:  # onnxruntime is imported only by the measurements that use it
    from .quantization import Agreement

INFERENCE_MODES = (
    "fp32",
    "amp",
    "channels_last",
    "channels_last_amp",
    "compile",
    "fast_path",
    "fast_path_amp",
    "fast_path_compile",
)
TRAINING_MODES = ("fp32", "amp", "channels_last", "channels_last_amp")


@dataclass
class Measurement:
    task: str
    variant: str
    mode: str
    device: str
    shape: str
    seconds: float
    throughput: float  # images (or frames) per second
    peak_memory_mb: float | None = None
    speedup: float | None = None  # versus the eager fp32 row of the same task, variant and device


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_callable(fn: Callable[[], object], device: torch.device, warmup: int = 10, min_time: float = 1.0) -> float:
    """Seconds per call."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    iterations = 1
    while True:
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        synchronize(device)
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / iterations
        iterations *= 2


def amp_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype(device))


def mode_label(mode: str, device: torch.device) -> str:
    """`amp` modes name the autocast dtype they ran with."""
    return f"{mode} ({str(amp_dtype(device)).removeprefix('torch.')})" if mode.endswith("amp") else mode


def peak_memory(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def build_model(variant: str, device: torch.device, training: bool) -> DDRNetForSemanticSegmentation:
    config = DDRNetConfig.from_variant(variant, class_weights="cityscapes", use_auxiliary_head=training)
    return DDRNetForSemanticSegmentation(config).to(device).train(training)


def inference_step(model, mode: str, device: torch.device, batch: int, height: int, width: int) -> Callable:
    """A closure running one forward pass of `mode`, logits upsampled to the input size as in the paper."""
    channels_last = "channels_last" in mode or mode.startswith("fast_path")
    use_amp = mode.endswith("amp")
    if mode.startswith("fast_path"):
        model = prepare_for_inference(model, channels_last=True, compile=mode.endswith("compile"))
    elif channels_last:
        model = model.to(memory_format=torch.channels_last)
    if mode == "compile":
        model = torch.compile(model)
    pixel_values = torch.randn(batch, 3, height, width, device=device)
    if channels_last:
        pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def step():
        with autocast(device, use_amp):
            logits = model(pixel_values).logits
            return F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)

    return step


def measure_inference(
    variant: str,
    modes,
    device: torch.device,
    batch: int,
    height: int,
    width: int,
    warmup: int,
    min_time: float,
    rounds: int = 2,
) -> list[Measurement]:
    """Each mode timed `rounds` times, interleaved with the others (see `best_times`)."""
    steps, memory = {}, {}
    for mode in modes:
        reset_peak_memory(device)
        steps[mode] = inference_step(build_model(variant, device, training=False), mode, device, batch, height, width)
        steps[mode]()  # compiles where needed, outside the timing
        memory[mode] = peak_memory(device)
    best = best_times(steps, device, warmup, min_time, rounds)
    shape = f"{batch}x3x{height}x{width}"
    return [
        Measurement(
            "inference",
            variant,
            mode_label(mode, device),
            device.type,
            shape,
            best[mode],
            batch / best[mode],
            memory[mode],
        )
        for mode in modes
    ]


def best_times(
    steps: dict[str, Callable], device: torch.device, warmup: int, min_time: float, rounds: int
) -> dict[str, float]:
    """Seconds per call of each step, timed `rounds` times interleaved with the others, keeping its best time: on a
    shared, noisy machine this keeps the ratios between steps honest."""
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(rounds):
        for name, step in steps.items():
            best[name] = min(best[name], time_callable(step, device, warmup, min_time))
    return best


def onnxruntime_step(runtime: Callable[[torch.Tensor], torch.Tensor], batch: int, height: int, width: int) -> Callable:
    """A closure running an `OnnxRuntimeLogits` on random pixels, logits upsampled to the input size as in the paper
    (the graph stops at the logits, 1/8 of the input)."""
    pixel_values = torch.from_numpy(
        np.random.default_rng(0).standard_normal((batch, 3, height, width), dtype=np.float32)
    )

    def step():
        return F.interpolate(runtime(pixel_values), size=(height, width), mode="bilinear", align_corners=False)

    return step


def measure_onnxruntime(variant: str, batch: int, height: int, width: int, warmup: int, min_time: float):
    """onnxruntime (CPU) on the exported inference graph, upsampling excluded from the graph but timed here. The
    session gets torch's thread count (`OMP_NUM_THREADS`, `torch.set_num_threads`), so that the rows compare."""
    from .onnx_export import OnnxRuntimeLogits, export_onnx

    model = build_model(variant, torch.device("cpu"), training=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, f"{tmp}/model.onnx", sample_size=(height, width))
        runtime = OnnxRuntimeLogits(path, threads=torch.get_num_threads())
        seconds = time_callable(onnxruntime_step(runtime, batch, height, width), torch.device("cpu"), warmup, min_time)
    shape = f"{batch}x3x{height}x{width}"
    return Measurement("inference", variant, "onnxruntime", "cpu", shape, seconds, batch / seconds)


def variant_name(config: DDRNetConfig) -> str:
    """The published variant whose widths and depths `config` has, or "custom"."""
    for name, values in VARIANTS.items():
        if all(getattr(config, key) == value for key, value in values.items()):
            return name
    return "custom"


INT8_TASK = "int8 comparison"


def measure_int8(
    model: DDRNetForSemanticSegmentation,
    calibration_split: datasets.Dataset,
    calibration_indices: list[int],
    eval_split: datasets.Dataset,
    batch: int,
    height: int,
    width: int,
    warmup: int,
    min_time: float,
    rounds: int = 2,
) -> tuple[list[Measurement], Agreement]:
    """A trained model on the CPU in fp32 (eager, and the fast path) and through onnxruntime (torch's thread count),
    fp32 and int8 (`quantize_int8` calibrated on the split's images at `calibration_indices`): speed at
    `batch`x3x`height`x`width`, all four interleaved, and the labels int8 changes on every image of `eval_split`.

    Returns the rows (task `INT8_TASK`) and the `Agreement` (mean IoU before and after, label disagreement).
    """
    from .onnx_export import OnnxRuntimeLogits, export_onnx
    from .quantization import compare_predictions, quantize_int8, split_samples

    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = export_onnx(model, f"{tmp}/model.onnx", sample_size=(height, width))
        calibration = split_samples(calibration_split, calibration_indices)
        int8_path = quantize_int8(fp32_path, f"{tmp}/model.int8.onnx", calibration)
        threads = torch.get_num_threads()
        fp32, int8 = OnnxRuntimeLogits(fp32_path, threads), OnnxRuntimeLogits(int8_path, threads)
        agreement = compare_predictions(fp32, int8, split_samples(eval_split, range(len(eval_split))), model.config)
        steps = {mode: inference_step(model, mode, cpu, batch, height, width) for mode in ("fp32", "fast_path")}
        steps["onnxruntime"] = onnxruntime_step(fp32, batch, height, width)
        steps["onnxruntime int8"] = onnxruntime_step(int8, batch, height, width)
        best = best_times(steps, cpu, warmup, min_time, rounds)
    variant, shape = variant_name(model.config), f"{batch}x3x{height}x{width}"
    rows = [Measurement(INT8_TASK, variant, mode, "cpu", shape, best[mode], batch / best[mode]) for mode in steps]
    return rows, agreement


def int8_summary(rows: list[Measurement], agreement: Agreement, model: str, split: str) -> dict:
    """The int8 graph's speed ratios (from `measure_int8`'s rows) and accuracy change, as one JSON-ready dict."""
    seconds = {row.mode: row.seconds for row in rows if row.task == INT8_TASK}
    return {
        "model": model,
        "eval_split": split,
        "num_images": agreement.num_images,
        "mean_iou_fp32": agreement.mean_iou_fp32,
        "mean_iou_int8": agreement.mean_iou_int8,
        "label_disagreement": agreement.disagreement,
        "speedup_vs_onnxruntime_fp32": seconds["onnxruntime"] / seconds["onnxruntime int8"],
        "speedup_vs_eager_fp32": seconds["fp32"] / seconds["onnxruntime int8"],
    }


def int8_markdown(summary: dict) -> str:
    """`int8_summary` as a markdown table row with its header."""
    return "\n".join(
        [
            "| model | split | images | mIoU fp32 | mIoU int8 | change | labels changed | int8 vs onnxruntime fp32 "
            "| int8 vs eager fp32 |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {summary['model']} | {summary['eval_split']} | {summary['num_images']} | "
            f"{100 * summary['mean_iou_fp32']:.2f} | {100 * summary['mean_iou_int8']:.2f} | "
            f"{100 * (summary['mean_iou_int8'] - summary['mean_iou_fp32']):+.2f} | "
            f"{summary['label_disagreement']:.2%} | {summary['speedup_vs_onnxruntime_fp32']:.2f}x | "
            f"{summary['speedup_vs_eager_fp32']:.2f}x |",
        ]
    )


def training_step(variant: str, mode: str, device: torch.device, batch: int, crop: int) -> Callable:
    """A closure running one full training step: forward with the OHEM loss (main + aux), backward, SGD step."""
    model = build_model(variant, device, training=True)
    channels_last, use_amp = "channels_last" in mode, mode.endswith("amp")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, fused=True)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype(device) == torch.float16)
    pixel_values = torch.randn(batch, 3, crop, crop, device=device)
    if channels_last:
        pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 19, (batch, crop, crop), device=device)

    def step():
        with autocast(device, use_amp):
            loss = model(pixel_values, labels=labels).loss
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    return step


def measure_training(
    variant: str, modes, device: torch.device, batch: int, crop: int, warmup: int, min_time: float
) -> list[Measurement]:
    """Images per second of a full training step per mode."""
    rows = []
    for mode in modes:
        step = training_step(variant, mode, device, batch, crop)
        reset_peak_memory(device)
        seconds = time_callable(step, device, warmup=max(2, warmup // 3), min_time=min_time)
        label = mode_label(mode, device)
        shape = f"{batch}x3x{crop}x{crop}"
        rows.append(
            Measurement("training", variant, label, device.type, shape, seconds, batch / seconds, peak_memory(device))
        )
    return rows


class PreviousTrainAugmentation(TrainAugmentation):
    """The pipeline before libspng and crop-first (PIL decode, PIL resize of the whole image, float32 pixels,
    int64 labels): the benchmark's baseline and the tests' reference. Same draws, same order."""

    def __call__(self, image: Image.Image, label: Image.Image, rng: np.random.Generator):
        """Returns `(3, crop_h, crop_w)` float32 normalized pixels (padding 0) and `(crop_h, crop_w)` uint8 labels."""
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
        pixels = np.zeros((3, crop_h, crop_w), dtype=np.float32)
        labels = np.full((crop_h, crop_w), IGNORE_INDEX, dtype=np.uint8)
        pixels[:, : image.shape[0], : image.shape[1]] = normalize(image)
        labels[: label.shape[0], : label.shape[1]] = label
        return pixels, labels


def previous_sample(augmentation: PreviousTrainAugmentation, image: bytes, label: bytes, rng) -> dict:
    """What the previous `TrainDataset` sent through the DataLoader: float32 CHW pixels, int64 labels."""
    with Image.open(io.BytesIO(image)) as image, Image.open(io.BytesIO(label)) as label:
        pixels, labels = augmentation(image, label, rng)
    return {"pixel_values": torch.from_numpy(pixels), "labels": torch.from_numpy(labels.astype(np.int64))}


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
        persistent_workers=True,
        prefetch_factor=2,
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
    """`split` (of the synthetic Cityscapes under `root`) with the image files' own bytes, as the builder stored
    them before it stored training images uncompressed."""
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

    Per worker (one process, one thread, best of `rounds` interleaved passes): the previous pipeline and the
    original code's on the PNG files, this one on the PNG files and on the stored bytes (the training read path),
    and its decoding alone. Then a DataLoader with each number of `workers` feeding a consumer that only touches
    the batch, for the previous pipeline and this one, each on what it reads in training.
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
        previous = PreviousTrainAugmentation(crop_size=(crop, crop), base_size=max(height, width))
        crop_name = f"({crop}x{crop})"
        pipelines = [  # (name, input, dataset)
            (
                f"previous: PIL, whole-image resize, float32 {crop_name}",
                inputs["PNG"],
                BytesPipelineDataset(files, previous_sample, previous),
            ),
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
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in a DataLoader worker
        try:
            best = [float("inf")] * len(pipelines)
            for _ in range(rounds):
                for index, (_, _, dataset) in enumerate(pipelines):
                    dataset[0]
                    start = time.perf_counter()
                    for draw in range(num_images):
                        dataset[draw]
                    best[index] = min(best[index], (time.perf_counter() - start) / num_images)
        finally:
            torch.set_num_threads(torch_threads)
        rows = [
            Measurement("data (1 worker)", "-", name, "cpu", shape, seconds, 1 / seconds)
            for (name, shape, _), seconds in zip(pipelines, best, strict=True)
        ]
        for num_workers in workers:
            task = f"data (DataLoader, {num_workers} worker{'s' if num_workers > 1 else ''}, batch {batch_size})"
            for name, shape, dataset in pipelines[0], pipelines[3]:
                seconds = loader_throughput(dataset, batch_size, num_workers, epochs=max(2, rounds))
                rows.append(Measurement(task, "-", name, "cpu", shape, seconds, 1 / seconds))
        return rows


def measure_metric(num_images: int = 4, height: int = 1024, width: int = 2048, min_time: float = 1.0):
    """Images per second of scoring one prediction: the Hub's three histograms vs one confusion-matrix bincount."""
    rng = np.random.default_rng(0)
    predictions = rng.integers(0, 19, (num_images, height, width), dtype=np.uint8)
    labels = rng.integers(0, 20, (num_images, height, width), dtype=np.uint8)
    labels[labels == 19] = 255

    def histograms():
        for prediction, label in zip(predictions, labels, strict=True):
            mask = label != 255
            p, t = prediction[mask], label[mask]
            bins = {"bins": 19, "range": (0, 18)}
            np.histogram(p[p == t], **bins), np.histogram(p, **bins), np.histogram(t, **bins)

    def bincount():
        for prediction, label in zip(predictions, labels, strict=True):
            confusion_matrix(prediction, label, 19, 255)

    torch_predictions, torch_labels = torch.from_numpy(predictions), torch.from_numpy(labels)

    def device_bincount():
        for prediction, label in zip(torch_predictions, torch_labels, strict=True):
            device_confusion_matrix(prediction, label, 19, 255)

    rows = []
    cpu = torch.device("cpu")
    for name, fn in (("hub histograms", histograms), ("numpy bincount", bincount), ("torch bincount", device_bincount)):
        seconds = time_callable(fn, cpu, warmup=1, min_time=min_time) / num_images
        rows.append(Measurement("metric", "-", name, "cpu", f"{height}x{width}", seconds, 1 / seconds))
    return rows


def add_speedups(rows: list[Measurement]) -> None:
    """Fill `speedup` against the fp32 eager row of the same task, variant, device and shape."""
    baselines = {(r.task, r.variant, r.device, r.shape): r.seconds for r in rows if r.mode == "fp32"}
    for row in rows:
        baseline = baselines.get((row.task, row.variant, row.device, row.shape))
        if baseline:
            row.speedup = baseline / row.seconds


def markdown_table(rows: list[Measurement]) -> str:
    lines = [
        "| task | variant | mode | device | input | ms | images/s | peak MB | vs eager fp32 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        memory = "-" if r.peak_memory_mb is None else f"{r.peak_memory_mb:.0f}"
        speedup = "-" if r.speedup is None else f"{r.speedup:.2f}x"
        lines.append(
            f"| {r.task} | {r.variant} | {r.mode} | {r.device} | {r.shape} | {1000 * r.seconds:.1f} | "
            f"{r.throughput:.2f} | {memory} | {speedup} |"
        )
    return "\n".join(lines)


def as_dicts(rows: list[Measurement]) -> list[dict]:
    return [asdict(row) for row in rows]
