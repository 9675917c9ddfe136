"""Checkpoints of a run, written crash-safe and resumed exactly.

A checkpoint is accelerate's states (model, optimizer, scheduler, scaler, RNG) plus `trainer_state.json`. It is
written to `step_N.tmp` and renamed when complete, so `latest` (the newest complete one) never names a
half-written checkpoint; resuming checks that the checkpoint was trained with this run's batch layout and network.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from accelerate import Accelerator
from accelerate.logging import get_logger
from torch.optim.lr_scheduler import LRScheduler

from ..errors import UserInputError, first_line
from ..files import TEMPORARY_SUFFIX, full_disk_named, json_text, read_json_file

logger = get_logger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^step_(\d+)$")
TRAINER_STATE = "trainer_state.json"
# What the state records of the run's shape; resuming with other values would silently change the schedule.
RUN_SHAPE_FIELDS = ("per_device_train_batch_size", "num_processes", "gradient_accumulation_steps")


@dataclass
class TrainerState:
    """What a checkpoint holds beside accelerate's states: where the run is, its best score so far, the steps it
    skipped, and the batch layout and network shape it was trained with (checked when resuming)."""

    global_step: int = 0
    best_mean_iou: float = -1.0
    max_train_steps: int = 0
    per_device_train_batch_size: int | None = None
    num_processes: int | None = None
    gradient_accumulation_steps: int | None = None
    architecture: dict = field(default_factory=dict)
    ema_decay: float = 0.0  # 0: no average of the weights
    skipped_steps: int = 0  # optimizer steps skipped for non-finite gradients (NonFiniteGuard)

    def save(self, checkpoint: Path) -> None:
        (checkpoint / TRAINER_STATE).write_text(json_text(asdict(self)))

    @classmethod
    def load(cls, checkpoint: Path) -> TrainerState:
        path = checkpoint / TRAINER_STATE
        data = read_json_file(path)
        known = {name: value for name, value in data.items() if name in cls.__dataclass_fields__}
        state = cls(**known)
        steps = (state.global_step, state.max_train_steps)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in steps):
            raise UserInputError(f"{path}: global_step and max_train_steps must be counts, got {steps}")
        if state.global_step > state.max_train_steps:
            raise UserInputError(
                f"{path}: global_step {state.global_step} is past the run's max_train_steps {state.max_train_steps}: "
                "the file is damaged"
            )
        return state

    def check_compatible(self, new: TrainerState, checkpoint: Path) -> None:
        """Refuse to resume with another batch layout or another network, or past the new run's length, naming the
        stored and new values."""
        if self.global_step > new.max_train_steps:
            raise UserInputError(
                f"{checkpoint} is at step {self.global_step}, past this run's {new.max_train_steps} steps: resume with "
                "--max_train_steps (or --num_train_epochs) at least as large, or start a new run"
            )
        for name in RUN_SHAPE_FIELDS:
            stored, wanted = getattr(self, name), getattr(new, name)
            if stored is not None and stored != wanted:
                flag = "the number of processes" if name == "num_processes" else f"--{name}"
                raise UserInputError(
                    f"{checkpoint} was trained with {flag} {stored}, this run has {wanted}: resuming would change "
                    "the schedule and the data order; resume with the same value or start a new run"
                )
        if self.ema_decay != new.ema_decay:
            raise UserInputError(
                f"{checkpoint} was trained with --ema_decay {self.ema_decay:g}, this run has {new.ema_decay:g}: the "
                "average of the weights cannot be carried over; resume with the same value or start a new run"
            )
        changed = {
            k: (v, new.architecture.get(k)) for k, v in self.architecture.items() if new.architecture.get(k) != v
        }
        if changed:
            details = ", ".join(f"{k} {old} (this run: {now})" for k, (old, now) in changed.items())
            raise UserInputError(f"{checkpoint} holds another network: {details}; pass the same --variant or model")


def checkpoint_step(path: Path) -> int | None:
    match = CHECKPOINT_PATTERN.match(path.name)
    return int(match.group(1)) if match and (path / TRAINER_STATE).is_file() else None


def list_checkpoints(checkpoints_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    checkpoints_dir = Path(checkpoints_dir)
    if not checkpoints_dir.is_dir():
        return []
    complete = [p for p in checkpoints_dir.iterdir() if p.is_dir() and checkpoint_step(p) is not None]
    return sorted(complete, key=checkpoint_step)


def find_latest_checkpoint(checkpoints_dir: str | Path) -> Path | None:
    checkpoints = list_checkpoints(checkpoints_dir)
    return checkpoints[-1] if checkpoints else None


def save_checkpoint(
    accelerator: Accelerator, checkpoints_dir: str | Path, trainer_state: TrainerState, total_limit: int | None
) -> Path:
    """`accelerator.save_state` (model, optimizer, scheduler, scaler, RNG) plus `trainer_state.json`, atomically.

    Must be called on every process. Returns the final checkpoint path.
    """
    checkpoints_dir = Path(checkpoints_dir)
    final = checkpoints_dir / f"step_{trainer_state.global_step:08d}"
    staging = final.with_name(final.name + TEMPORARY_SUFFIX)
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    try:
        with full_disk_named(checkpoints_dir):
            accelerator.save_state(str(staging))
            if accelerator.is_main_process:
                trainer_state.save(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # never left beside the complete checkpoints
        raise
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        if total_limit:  # 0 keeps every checkpoint
            for old in list_checkpoints(checkpoints_dir)[:-total_limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def resolve_checkpoint(argument: str, checkpoints_dir: str | Path) -> Path | None:
    """`latest` -> newest complete checkpoint (None if there is none yet); a path -> that checkpoint."""
    if argument == "latest":
        return find_latest_checkpoint(checkpoints_dir)
    path = Path(argument)
    if not (path / TRAINER_STATE).is_file():
        raise UserInputError(
            f"--resume_from_checkpoint {argument}: not a complete checkpoint (no {TRAINER_STATE} inside)"
        )
    return path


def load_checkpoint(accelerator: Accelerator, checkpoint: Path, expected: TrainerState) -> TrainerState:
    """Restore accelerate's states and the trainer state from `checkpoint` after checking that it fits this run.

    A damaged checkpoint (truncated weights, corrupt optimizer state, invalid JSON) is named, with the previous
    complete checkpoint offered instead.
    """
    try:
        stored = TrainerState.load(checkpoint)
        stored.check_compatible(expected, checkpoint)
        accelerator.load_state(str(checkpoint))
    except UserInputError:
        raise
    except Exception as error:  # accelerate raises whatever torch, safetensors or pickle raise on a damaged file
        step = checkpoint_step(checkpoint)
        earlier = [
            c
            for c in list_checkpoints(checkpoint.parent)
            if c != checkpoint and (step is None or checkpoint_step(c) < step)
        ]
        offer = (
            f"; resume from the previous complete one with --resume_from_checkpoint {earlier[-1]}" if earlier else ""
        )
        raise UserInputError(f"checkpoint {checkpoint} cannot be loaded: {first_line(error)}{offer}") from error
    return replace(
        expected,
        global_step=stored.global_step,
        best_mean_iou=stored.best_mean_iou,
        skipped_steps=stored.skipped_steps,
    )


def start_or_resume(
    expected: TrainerState,
    accelerator: Accelerator,
    resume_from: str | None,
    checkpoints_dir: Path,
    scheduler: LRScheduler | None = None,
) -> TrainerState:
    """`expected`, the state of a new run, or the state restored from the checkpoint `resume_from` names (`latest`
    or a path) after checking that it was trained with the batch layout and network of `expected`; the log names
    the restored `scheduler`'s learning rate."""
    if not resume_from:
        return expected
    checkpoint = resolve_checkpoint(resume_from, checkpoints_dir)
    if checkpoint is None:
        logger.info("No checkpoint to resume from yet: starting a new run")
        return expected
    state = load_checkpoint(accelerator, checkpoint, expected=expected)
    learning_rate = f", lr {scheduler.get_last_lr()[0]:.6g}" if scheduler is not None else ""
    logger.info(f"Resumed from {checkpoint} at step {state.global_step}{learning_rate}")
    return state
