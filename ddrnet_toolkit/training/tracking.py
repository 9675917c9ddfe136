"""What a run reports as it trains: losses, learning rates and speed at logging steps, and validation images beside
their predicted and true masks, to the trackers (TensorBoard), the progress bar and the log."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from tqdm.auto import tqdm

from ..inference.visualization import comparison

logger = get_logger(__name__)


class LossMeter:
    """Sums the total, main, auxiliary and distillation losses on the device; the host reads them once per logging
    interval."""

    def __init__(self, accelerator: Accelerator, images_per_step: int, start_step: int, distilling: bool = False):
        self.accelerator = accelerator
        self.images_per_step = images_per_step
        self.distilling = distilling
        self.sums = torch.zeros(4, device=accelerator.device)
        self.count = 0
        self.since_time, self.since_step = time.perf_counter(), start_step

    def add(self, outputs, distillation_loss: torch.Tensor | None = None) -> None:
        zero = outputs.main_loss * 0
        auxiliary = outputs.auxiliary_loss if outputs.auxiliary_loss is not None else zero
        distillation = distillation_loss if distillation_loss is not None else zero
        self.sums += torch.stack([outputs.loss, outputs.main_loss, auxiliary, distillation]).detach().float()
        self.count += 1

    def read(self, step: int) -> dict[str, float]:
        """Mean losses over all processes since the last read (the distillation term when distilling), and the
        images per second (a host sync)."""
        total, main, auxiliary, distillation = self.accelerator.reduce(self.sums / max(self.count, 1), "mean").tolist()
        elapsed = max(time.perf_counter() - self.since_time, 1e-9)
        images_per_second = (step - self.since_step) * self.images_per_step / elapsed
        self.sums.zero_()
        self.count = 0
        self.since_time, self.since_step = time.perf_counter(), step
        logs = {"loss": total, "main_loss": main, "aux_loss": auxiliary, "images_per_second": images_per_second}
        if self.distilling:
            logs["distillation_loss"] = distillation
        return logs


def log_prediction_images(accelerator: Accelerator, samples: list, step: int, palette: np.ndarray) -> None:
    """Validation images beside their predicted and true masks, in the dataset's colours."""
    if not samples or not accelerator.is_main_process:
        return
    images = {f"eval_images/{i}": comparison(*sample, palette) for i, sample in enumerate(samples)}
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.log_images(images, step=step, dataformats="HWC")


def log_training_step(
    accelerator: Accelerator,
    losses: LossMeter,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: tqdm,
    step: int,
    max_train_steps: int,
    epoch: int,
    skipped_steps: int = 0,
) -> None:
    """Losses, learning rate(s), speed since the last logging step and the steps skipped so far (non-finite
    gradients, see `NonFiniteGuard`), to the trackers, the progress bar and the log."""
    learning_rates = scheduler.get_last_lr()
    logs = {**losses.read(step), "learning_rate": learning_rates[0], "skipped_steps": skipped_steps}
    if len(learning_rates) > 1:
        logs["learning_rate_heads"] = learning_rates[1]
    accelerator.log({f"train/{k}": v for k, v in logs.items()}, step=step)
    progress.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{logs['learning_rate']:.5f}")
    parts = f"main {logs['main_loss']:.4f}"
    if "distillation_loss" in logs:
        parts += f", distillation {logs['distillation_loss']:.4f}"
    logger.info(
        f"step {step}/{max_train_steps} epoch {epoch} loss {logs['loss']:.4f} ({parts}) "
        f"lr {logs['learning_rate']:.6f} {logs['images_per_second']:.1f} images/s"
        + (f", {skipped_steps} step(s) skipped so far" if skipped_steps else "")
    )


def read_logged_scalars(log_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars a run logged to TensorBoard under `log_dir`: tag -> `(step, value)` pairs in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend((event.step, event.value) for event in accumulator.Scalars(tag))
    return {tag: sorted(values) for tag, values in scalars.items()}
