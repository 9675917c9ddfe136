"""Crash-safe saving: every checkpoint and model folder is written aside, then put in place by one atomic rename.

A run killed at any moment leaves the previous checkpoint and the previous best/last model intact and whole.
Checkpoint folders still being written carry a `.tmp` suffix that `find_latest_checkpoint` skips. Model folders
(`best_model`, `last_model`) are symbolic links to complete versions in `.model_versions/`: a new version is
written beside the old one and the link is swapped in one rename, so a reader sees one whole model or the other.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from accelerate import Accelerator

from .cli import UserInputError, first_line
from .model_loading import read_json_file

CHECKPOINT_PATTERN = re.compile(r"^step_(\d+)$")
TRAINER_STATE = "trainer_state.json"
# The dataset's classes (names, colours, ignore value) beside a saved model, read by predict and push_to_hub.
LABELS_FILE = "labels.json"
TMP_SUFFIX = ".tmp"
MODEL_VERSIONS = ".model_versions"
# What the state records of the run's shape; resuming with other values would silently change the schedule.
RUN_SHAPE_FIELDS = ("per_device_train_batch_size", "num_processes", "gradient_accumulation_steps")


@dataclass
class TrainerState:
    """What a checkpoint holds beside accelerate's states: where the run is, its best score so far, and the batch
    layout and network shape it was trained with (checked when resuming)."""

    global_step: int = 0
    best_mean_iou: float = -1.0
    max_train_steps: int = 0
    per_device_train_batch_size: int | None = None
    num_processes: int | None = None
    gradient_accumulation_steps: int | None = None
    architecture: dict = field(default_factory=dict)
    ema_decay: float = 0.0  # 0: no average of the weights (checkpoints from before averaging existed)

    def save(self, checkpoint: Path) -> None:
        (checkpoint / TRAINER_STATE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, checkpoint: Path) -> TrainerState:
        data = read_json_file(checkpoint / TRAINER_STATE)
        known = {name: value for name, value in data.items() if name in cls.__dataclass_fields__}
        return cls(**known)

    def check_compatible(self, new: TrainerState, checkpoint: Path) -> None:
        """Refuse to resume with another batch layout or another network, naming the stored and new values."""
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


def save_pretrained_atomically(model, image_processor, directory: str | Path, extra_json: dict[str, dict]) -> None:
    """Write a complete model folder beside the old one, then point `directory` (a symbolic link) at it with one
    atomic rename, and remove the old version. Readers of `directory` see the whole old or the whole new model.

    Only the link and `.model_versions/<name>-*` folders are ever replaced or removed; a real folder at
    `directory` (not written by this function) is refused.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_symlink():
        raise UserInputError(
            f"{directory} exists and was not written by this project's atomic save: move it away, or pass "
            "--overwrite_output_dir to replace the whole run"
        )
    versions = directory.parent / MODEL_VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    version = Path(tempfile.mkdtemp(prefix=f"{directory.name}-", dir=versions))
    model.save_pretrained(version, safe_serialization=True)
    image_processor.save_pretrained(version)
    for name, data in extra_json.items():
        (version / name).write_text(json.dumps(data, indent=2) + "\n")
    link = versions / f"{version.name}.link"
    os.symlink(os.path.relpath(version, directory.parent), link)
    os.replace(link, directory)
    # Earlier versions of this folder, and any left by a run killed before its rename, are no longer referenced.
    for old in versions.glob(f"{directory.name}-*"):
        if old.is_symlink():
            old.unlink()
        elif old != version and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


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
    staging = final.with_name(final.name + TMP_SUFFIX)
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        trainer_state.save(staging)
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
    return replace(expected, global_step=stored.global_step, best_mean_iou=stored.best_mean_iou)
