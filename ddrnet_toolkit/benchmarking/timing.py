"""Timing the paper's way, and the rows and tables every measurement reports.

As DDRNet's own speed script: warm up, then double the iteration count until one run lasts at least `min_time`
seconds, synchronizing the device around it; report the mean time of that run. Steps compared in one table are
timed in interleaved rounds, each keeping its best time, so that a shared, noisy machine keeps the ratios honest.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch


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


def autocast(device: torch.device, enabled: bool, dtype: torch.dtype | None = None):
    """Autocast to `dtype` (default `amp_dtype`) when `enabled`."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype or amp_dtype(device))


def enable_cudnn_autotuning(device: torch.device) -> bool:
    """On a CUDA device, let cuDNN time its convolution algorithms for each new input shape and keep the fastest
    (`torch.backends.cudnn.benchmark`), as every speed measurement here runs fixed shapes; returns whether it is on."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return bool(torch.backends.cudnn.benchmark)


def mode_label(mode: str, device: torch.device) -> str:
    """`amp` modes name the autocast dtype they ran with."""
    return f"{mode} ({str(amp_dtype(device)).removeprefix('torch.')})" if mode.endswith("amp") else mode


def peak_memory(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


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
