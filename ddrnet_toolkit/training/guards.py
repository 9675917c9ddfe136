"""Stopping a run that cannot be right: steps with non-finite gradients are skipped on the device and counted, too
many in a row stop the run, and a model with non-finite weights is never saved."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger

from ..errors import UserInputError
from ..model_folder import check_finite

logger = get_logger(__name__)


class TrainingDiverged(UserInputError):
    """Too many optimizer steps in a row had non-finite gradients."""


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


def check_weights_finite(model: torch.nn.Module, step: int) -> None:
    """A model with NaN or infinite weights or statistics cannot be right: stop instead of saving it."""
    try:
        check_finite(model, f"the model at step {step}")
    except UserInputError as error:
        raise TrainingDiverged(f"{error}; nothing was saved. Lower the learning rate or check the data.") from error
