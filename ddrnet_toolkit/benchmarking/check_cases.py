"""What the GPU check runs on a device: the inference and training-step cases, the precisions to train with and
whether a multi-GPU run applies, decided from plain facts (device type, bfloat16 support, GPU count) so that every
CUDA branch can be checked on a CPU."""

from __future__ import annotations

from dataclasses import dataclass

import torch

PRECISION_NAMES = {None: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


@dataclass(frozen=True)
class Case:
    """One row of a speed table: its label, the `benchmarking.models` mode, the autocast dtype (None: fp32) and,
    for training, whether the step is compiled."""

    label: str
    mode: str
    dtype: torch.dtype | None = None
    compile: bool = False


def best_autocast_dtype(bfloat16: bool) -> torch.dtype:
    """bfloat16 where the device has it (float32's range: no loss scaling), float16 elsewhere."""
    return torch.bfloat16 if bfloat16 else torch.float16


def autocast_dtypes(bfloat16: bool) -> list[torch.dtype]:
    return [torch.float16, torch.bfloat16] if bfloat16 else [torch.float16]


def inference_cases(device_type: str, bfloat16: bool) -> list[Case]:
    """The inference benchmark's modes: fp32, each autocast dtype, channels_last, the fast path (BatchNorm folded)
    and, with the best dtype, the fast path compiled and, on CUDA, replayed from a CUDA graph."""
    best = best_autocast_dtype(bfloat16)
    name = PRECISION_NAMES[best]
    cases = [Case("fp32", "fp32")]
    cases += [Case(f"{PRECISION_NAMES[dtype]} autocast", "amp", dtype) for dtype in autocast_dtypes(bfloat16)]
    cases += [
        Case("channels_last", "channels_last"),
        Case(f"channels_last + {name}", "channels_last_amp", best),
        Case("fast path", "fast_path"),
        Case(f"fast path + {name}", "fast_path_amp", best),
        Case(f"fast path + {name} + torch.compile", "fast_path_amp_compile", best),
    ]
    if device_type == "cuda":
        cases.append(Case(f"fast path + {name} + CUDA graph", "cuda_graph", best))
    return cases


def training_cases(bfloat16: bool) -> list[Case]:
    """A full training step per precision, then each with channels_last, then the best compiled."""
    dtypes = [None, *autocast_dtypes(bfloat16)]
    cases = [Case(PRECISION_NAMES[dtype], "fp32" if dtype is None else "amp", dtype) for dtype in dtypes]
    for dtype in dtypes:
        mode = "channels_last" if dtype is None else "channels_last_amp"
        cases.append(Case(f"{PRECISION_NAMES[dtype]} + channels_last", mode, dtype))
    best = best_autocast_dtype(bfloat16)
    cases.append(Case(f"{PRECISION_NAMES[best]} + channels_last + torch.compile", "channels_last_amp", best, True))
    return cases


def training_precisions(bfloat16: bool) -> list[str]:
    """train.py's `--mixed_precision` values to run: no, fp16 and, where the device has it, bf16."""
    return ["no", "fp16", "bf16"] if bfloat16 else ["no", "fp16"]


def multi_gpu_problem(device_type: str, gpu_count: int) -> str | None:
    """Why a two-process run with SyncBatchNorm cannot run here, or None when it can."""
    if device_type != "cuda":
        return "runs on GPUs only (the test suite runs two CPU processes over gloo)"
    if gpu_count < 2:
        return f"needs 2 GPUs, this machine has {gpu_count}"
    return None
