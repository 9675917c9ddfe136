"""One batch of the training loop: forward with the loss, backward, the non-finite check, the optimizer step."""

from __future__ import annotations

import torch
from accelerate import Accelerator

from ..data.normalization import normalize_on_device
from .guards import NonFiniteGuard


def train_on_batch(
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    guard: NonFiniteGuard,
    batch: dict[str, torch.Tensor],
    channels_last: bool = False,
):
    """Forward and backward one uint8 batch (normalized on the device); the optimizer steps when the gradients are
    synchronized (the last batch of an accumulation), skipping the step on the device when they are not finite.
    Returns the model's outputs."""
    pixel_values, labels = normalize_on_device(batch, channels_last)
    with accelerator.accumulate(model):
        outputs = model(pixel_values=pixel_values, labels=labels)
        guard.note_loss(outputs.loss)
        accelerator.backward(outputs.loss)
        if accelerator.sync_gradients:
            guard.check_gradients(model)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return outputs
