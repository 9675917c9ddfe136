"""Choosing the device to run on: `auto` takes the GPU when there is one; a named device must exist here."""

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
