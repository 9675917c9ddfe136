"""Pieces of the training loop that are not the loop itself: argument checks, schedule, non-finite guard."""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger

logger = get_logger(__name__)


def make_accelerator(**kwargs) -> Accelerator:
    """An `Accelerator` that runs a multi-process launch on the CPU over gloo when no GPU is visible.

    (accelerate otherwise treats each process of a torchrun-style launch without GPUs as a separate run.)
    """
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Accelerator(cpu=distributed and not torch.cuda.is_available(), **kwargs)


class TrainingDiverged(RuntimeError):
    """Too many optimizer steps in a row had non-finite gradients."""


def poly_schedule(max_steps: int, power: float = 0.9) -> Callable[[int], float]:
    """The original per-iteration schedule: `lr = base_lr * (1 - step / max_steps) ** power`."""

    def factor(step: int) -> float:
        return (1.0 - min(step, max_steps) / max_steps) ** power

    return factor


def check_training_arguments(args: argparse.Namespace) -> None:
    """Reject values that would fail deep inside torch, naming the argument at fault."""
    positive = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps")
    positive += ("logging_steps", "num_train_epochs", "base_size")
    for name in positive:
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("max_train_steps", "eval_steps", "checkpointing_steps", "ohem_min_kept"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be at least 1, got {value}")
    if args.num_workers < 0:
        raise ValueError(f"--num_workers must be >= 0, got {args.num_workers}")
    if min(args.crop_size) < 1:
        raise ValueError(f"--crop_size must be positive, got {args.crop_size}")
    low, high = args.scale_range
    if not 0 < low <= high:
        raise ValueError(f"--scale_range must satisfy 0 < MIN <= MAX, got {args.scale_range}")
    largest = args.base_size * high
    if max(args.crop_size) > largest:
        raise ValueError(
            f"--crop_size {args.crop_size[0]} {args.crop_size[1]} is larger than the largest scaled image "
            f"(--base_size {args.base_size} x {high} = {largest:g} on the long side): every crop would be mostly "
            "padding. Lower --crop_size or raise --base_size/--scale_range."
        )
    if args.learning_rate <= 0:
        raise ValueError(f"--learning_rate must be positive, got {args.learning_rate}")


def check_output_dir(output_dir: Path) -> None:
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir):
            pass
    except OSError as error:
        raise PermissionError(f"--output_dir {output_dir} cannot be written: {error.strerror or error}") from error


def check_distributed_setup(accelerator: Accelerator, per_device_batch_size: int) -> None:
    if accelerator.device.type == "cuda" and accelerator.local_process_index >= torch.cuda.device_count():
        raise RuntimeError(
            f"{accelerator.num_processes} processes were launched but this machine has {torch.cuda.device_count()} "
            "GPU(s): lower --num_processes in the accelerate config."
        )
    if per_device_batch_size == 1 and not (accelerator.num_processes > 1 and accelerator.device.type == "cuda"):
        raise ValueError(
            "--per_device_train_batch_size 1 cannot train DDRNet: the global-pooling branch of DAPPM applies "
            "BatchNorm to a 1x1 map, which needs at least 2 samples (or SyncBatchNorm across several GPUs)."
        )


class NonFiniteGuard:
    """Skips optimizer steps whose gradients hold NaN or inf, without synchronizing with the host.

    The check runs on the device after gradients are reduced (so every process takes the same decision) and
    hands its flag to the fused SGD kernel, which then leaves weights and momentum untouched. Under fp16 the
    gradient scaler does the skipping; the guard only counts. The counters are read at logging steps.
    """

    def __init__(self, accelerator: Accelerator, optimizer: torch.optim.Optimizer, max_consecutive: int):
        self.inner = getattr(optimizer, "optimizer", optimizer)
        self.uses_scaler = accelerator.scaler is not None
        self.max_consecutive = max_consecutive
        self.streak = torch.zeros((), device=accelerator.device)
        self.skipped = torch.zeros((), device=accelerator.device)
        self.reported = 0
        self.one = torch.ones((), device=accelerator.device)

    def check_gradients(self, model: torch.nn.Module) -> None:
        found_inf = torch.zeros((), device=self.one.device)
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if grads:
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, self.one)
        if not self.uses_scaler:
            self.inner.found_inf = found_inf
            self.inner.grad_scale = None
        self.streak = (self.streak + found_inf) * found_inf
        self.skipped += found_inf

    def raise_if_diverged(self, step: int) -> None:
        skipped, streak = int(self.skipped.item()), int(self.streak.item())
        if skipped > self.reported:
            logger.warning(f"step {step}: skipped {skipped - self.reported} step(s) with non-finite loss or gradients")
            self.reported = skipped
        if streak >= self.max_consecutive:
            raise TrainingDiverged(
                f"Stopped at step {step}: {streak} consecutive steps had non-finite loss or gradients "
                f"(--max_nonfinite_steps {self.max_consecutive}). The last checkpoint in the output folder is intact; "
                "lower the learning rate or check the data before resuming."
            )
