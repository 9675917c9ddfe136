"""Inference and training speed of the networks per mode: eager fp32, autocast, channels_last, `torch.compile`,
the fast path (BatchNorm folded), onnxruntime."""

from __future__ import annotations

import tempfile
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from modeling_ddrnet import VARIANTS, DDRNetConfig, DDRNetForSemanticSegmentation
from modeling_ddrnet.fast_inference import prepare_for_inference

from ..export.onnx import export_onnx
from ..inference.engines import OnnxRuntimeEngine
from .timing import (
    Measurement,
    amp_dtype,
    autocast,
    best_times,
    mode_label,
    peak_memory,
    reset_peak_memory,
    time_callable,
)

INFERENCE_MODES = (
    "fp32",
    "amp",
    "channels_last",
    "channels_last_amp",
    "compile",
    "fast_path",
    "fast_path_amp",
    "fast_path_compile",
    "fast_path_amp_compile",
)
TRAINING_MODES = ("fp32", "amp", "channels_last", "channels_last_amp")


def build_model(variant: str, device: torch.device, training: bool) -> DDRNetForSemanticSegmentation:
    config = DDRNetConfig.from_variant(variant, class_weights="cityscapes", use_auxiliary_head=training)
    return DDRNetForSemanticSegmentation(config).to(device).train(training)


def inference_step(
    model,
    mode: str,
    device: torch.device,
    batch: int,
    height: int,
    width: int,
    dtype: torch.dtype | None = None,
    compile_backend: str = "inductor",
) -> Callable:
    """A closure running one forward pass of `mode`, logits upsampled to the input size as in the paper; `amp`
    modes autocast to `dtype` (default `amp_dtype`), `compile` modes compile with `compile_backend`."""
    channels_last = "channels_last" in mode or mode.startswith("fast_path")
    use_amp = "amp" in mode
    if mode.startswith("fast_path"):
        compile = mode.endswith("compile")
        model = prepare_for_inference(model, channels_last=True, compile=compile, compile_backend=compile_backend)
    elif channels_last:
        model = model.to(memory_format=torch.channels_last)
    if mode == "compile":
        model = torch.compile(model, backend=compile_backend)
    pixel_values = torch.randn(batch, 3, height, width, device=device)
    if channels_last:
        pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def step():
        with autocast(device, use_amp, dtype):
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


def onnxruntime_step(runtime: Callable[[torch.Tensor], torch.Tensor], batch: int, height: int, width: int) -> Callable:
    """A closure running an exported engine (`inference.engines`) on random pixels, logits upsampled to the input
    size as in the paper (the graph stops at the logits, 1/8 of the input)."""
    pixel_values = torch.from_numpy(
        np.random.default_rng(0).standard_normal((batch, 3, height, width), dtype=np.float32)
    )

    def step():
        return F.interpolate(runtime(pixel_values), size=(height, width), mode="bilinear", align_corners=False)

    return step


def measure_onnxruntime(variant: str, batch: int, height: int, width: int, warmup: int, min_time: float):
    """onnxruntime (CPU) on the exported inference graph, upsampling excluded from the graph but timed here. The
    session gets torch's thread count (`OMP_NUM_THREADS`, `torch.set_num_threads`), so that the rows compare."""

    model = build_model(variant, torch.device("cpu"), training=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, f"{tmp}/model.onnx", sample_size=(height, width))
        runtime = OnnxRuntimeEngine(path, model.config, threads=torch.get_num_threads())
        seconds = time_callable(onnxruntime_step(runtime, batch, height, width), torch.device("cpu"), warmup, min_time)
    shape = f"{batch}x3x{height}x{width}"
    return Measurement("inference", variant, "onnxruntime", "cpu", shape, seconds, batch / seconds)


def variant_name(config: DDRNetConfig) -> str:
    """The published variant whose widths and depths `config` has, or "custom"."""
    for name, values in VARIANTS.items():
        if all(getattr(config, key) == value for key, value in values.items()):
            return name
    return "custom"


def training_step(
    variant: str,
    mode: str,
    device: torch.device,
    batch: int,
    crop: int,
    dtype: torch.dtype | None = None,
    compile_backend: str | None = None,
) -> Callable:
    """A closure running one full training step on a fixed random batch of `batch`x3x`crop`x`crop` (see
    `batch_training_step`)."""
    step = batch_training_step(build_model(variant, device, training=True), mode, device, dtype, compile_backend)
    pixel_values = torch.randn(batch, 3, crop, crop, device=device)
    if "channels_last" in mode:
        pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 19, (batch, crop, crop), device=device)
    return lambda: step(pixel_values, labels)


def batch_training_step(
    model: DDRNetForSemanticSegmentation,
    mode: str,
    device: torch.device,
    dtype: torch.dtype | None = None,
    compile_backend: str | None = None,
) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """`step(pixel_values, labels)`: one full training step of `model` (in training mode) on a batch, forward with
    the OHEM loss (main + aux), backward, SGD step. `amp` modes autocast to `dtype` (default `amp_dtype`; float16
    scales the loss), `channels_last` modes use the NHWC layout, `compile_backend` compiles the model."""
    channels_last, use_amp = "channels_last" in mode, mode.endswith("amp")
    dtype = dtype or amp_dtype(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, fused=True)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and dtype == torch.float16)
    if compile_backend is not None:
        model = torch.compile(model, backend=compile_backend)

    def step(pixel_values: torch.Tensor, labels: torch.Tensor) -> None:
        with autocast(device, use_amp, dtype):
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
