"""Choosing the device to run on (`auto` takes the GPU when there is one; a named device must exist here) and what
the device decides: bfloat16 support, the mixed precision to train with, pinned host memory."""

from __future__ import annotations

import torch

from .errors import UserInputError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:1, ..."


def resolve_device(name: str) -> torch.device:
    """`auto` (CUDA when available, else the CPU) or a device name; a `UserInputError` that starts with the name
    says why a device cannot be used on this machine."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UserInputError(f"{name}: not a device (use {DEVICE_CHOICES})") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserInputError(f"{name}: no CUDA GPU is available on this machine (use cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserInputError(f"{name}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UserInputError(f"{name}: MPS is not available on this machine")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UserInputError(f"{name}: unsupported device type (use {DEVICE_CHOICES})")
    return device


def supports_bfloat16(device: torch.device) -> bool:
    """Whether autocast can run bfloat16 here: GPUs from Ampere on (compute capability 8), every CPU (fast with
    AVX-512 BF16 or AMX, emulated and slow otherwise)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu"


def training_mixed_precision(device: torch.device, bfloat16: bool | None = None) -> str:
    """The `--mixed_precision` to train with on `device` (whether it `supports_bfloat16` unless given): bf16 where
    the GPU has it (float32's range, no loss scaling), fp16 on older GPUs, no on CPUs (mixed precision is not faster
    there)."""
    if device.type != "cuda":
        return "no"
    return "bf16" if (supports_bfloat16(device) if bfloat16 is None else bfloat16) else "fp16"


def pins_memory(device: torch.device) -> bool:
    """Whether data loaders should page-lock their batches: copies to a CUDA GPU then run asynchronously beside
    the compute; elsewhere pinning costs time for nothing."""
    return device.type == "cuda"
