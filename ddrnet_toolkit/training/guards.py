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
    """Skips optimizer steps whose gradients hold NaN or inf, without synchronizing with the host, and stops a run
    whose steps stay non-finite.

    The check runs on the device after gradients are reduced (so every process takes the same decision) and
    hands its flag to the fused SGD kernel, which then leaves weights and momentum untouched. Under fp16 the
    gradient scaler does the skipping (it finds the same non-finite gradients) and the guard only counts. The
    counters are read at logging steps.

    Every skipped step is counted once in `skipped_steps`. The streak that stops the run after `max_consecutive`
    steps leaves out the scaler's calibration: an fp16 step whose losses are finite but whose scaled gradients
    overflow while the loss scale is above 1 only lowers the scale (a run starts at 2^16 and halves it until the
    gradients fit), so it neither starts nor ends a streak. A non-finite loss, or gradients that overflow at a scale
    of 1 or less, count as they do in fp32. Each process judges its own losses; the run stops on the longest
    streak of any process, so all processes stop together.
    """

    def __init__(
        self, accelerator: Accelerator, optimizer: torch.optim.Optimizer, max_consecutive: int, skipped_before: int = 0
    ):
        self.accelerator = accelerator
        self.inner = getattr(optimizer, "optimizer", optimizer)
        self.scaler = accelerator.scaler
        self.max_consecutive = max_consecutive
        device = accelerator.device
        self.streak = torch.zeros((), device=device)
        self.skipped = torch.zeros((), device=device)
        self.overflows = torch.zeros((), device=device)  # the skipped steps that only lowered the fp16 loss scale
        self.losses_finite = torch.ones((), dtype=torch.bool, device=device)
        self.skipped_before = skipped_before  # by the run before a resume
        self.reported = (skipped_before, 0)
        self.one = torch.ones((), device=device)

    def note_loss(self, loss: torch.Tensor) -> None:
        """Record whether the loss of a batch of this optimizer step (every micro-batch of an accumulation) is
        finite."""
        self.losses_finite &= torch.isfinite(loss.detach())

    def check_gradients(self, model: torch.nn.Module) -> None:
        """Flag this optimizer step for skipping when a gradient is not finite, and update the counters."""
        found_inf = torch.zeros((), device=self.one.device)
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if grads:
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, self.one)
        if self.scaler is None:
            self.inner.found_inf = found_inf
            self.inner.grad_scale = None
            overflow = torch.zeros_like(found_inf)
        else:
            # The scale these gradients were multiplied by, read without a host synchronization.
            calibrating = self.losses_finite & (self.scaler._get_scale_async() > 1)
            overflow = found_inf * calibrating
        # A finite step ends the streak, a counted one extends it, a calibration step leaves it as it is.
        self.streak = torch.where(found_inf > 0, self.streak + found_inf - overflow, 0.0)
        self.skipped += found_inf
        self.overflows += overflow
        self.losses_finite.fill_(True)

    def skipped_steps(self) -> int:
        """Steps skipped since the run started, before a resume included (a host synchronization)."""
        return self.skipped_before + int(self.skipped.item())

    def raise_if_diverged(self, step: int) -> None:
        """Log the steps skipped since the last call, and stop the run after `max_consecutive` non-finite steps in a
        row (a host synchronization)."""
        skipped = self.skipped_steps()
        # accelerate reduces by sum, mean or max: the fewest overflows of any process is minus the max of minus.
        overflows = -int(self.accelerator.reduce(-self.overflows, "max").item())
        streak = int(self.accelerator.reduce(self.streak, "max").item())
        new_skipped, new_overflows = skipped - self.reported[0], overflows - self.reported[1]
        self.reported = (skipped, overflows)
        if new_skipped > new_overflows:
            logger.warning(
                f"step {step}: skipped {new_skipped - new_overflows} step(s) with non-finite loss or gradients"
            )
        if new_overflows:
            logger.info(
                f"step {step}: skipped {new_overflows} step(s) whose fp16 gradients overflowed; the loss scale is now "
                f"{self.scaler.get_scale():g}"
            )
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
