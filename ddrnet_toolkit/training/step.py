"""One batch of the training loop: forward with the loss (and a teacher's distillation term), backward, the
non-finite check, the optimizer step."""

from __future__ import annotations

import torch
from accelerate import Accelerator

from ..data.normalization import normalize_on_device
from .distillation import Teacher
from .guards import NonFiniteGuard


def train_on_batch(
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    guard: NonFiniteGuard,
    batch: dict[str, torch.Tensor],
    channels_last: bool = False,
    teacher: Teacher | None = None,
    align_corners: bool = False,
) -> tuple:
    """Forward and backward one uint8 batch (normalized on the device); the optimizer steps when the gradients are
    synchronized (the last batch of an accumulation), skipping the step on the device when they are not finite.

    With a `teacher`, the loss that is backpropagated is the model's plus `teacher.weight` times the distillation
    term (`align_corners`: the student's upsampling mode); `outputs.loss` holds that sum.
    Returns the model's outputs and the unweighted distillation term (None without a teacher).
    """
    pixel_values, labels = normalize_on_device(batch, channels_last)
    distillation = None
    with accelerator.accumulate(model):
        outputs = model(pixel_values=pixel_values, labels=labels)
        if teacher is not None:
            distillation = teacher.loss(pixel_values, outputs.logits, labels, align_corners)
            outputs.loss = outputs.loss + teacher.weight * distillation
        guard.note_loss(outputs.loss)
        accelerator.backward(outputs.loss)
        if accelerator.sync_gradients:
            guard.check_gradients(model)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return outputs, distillation
