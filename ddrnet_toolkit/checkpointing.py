"""Crash-safe saving: every checkpoint and model folder is written aside, then renamed into place.

A run killed at any moment leaves the previous checkpoint and the previous best/last model intact: renames are
atomic on POSIX file systems, and folders still being written carry a `.tmp` suffix that `find_latest_checkpoint`
skips.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from accelerate import Accelerator

from .cli import UserInputError

CHECKPOINT_PATTERN = re.compile(r"^step_(\d+)$")
TRAINER_STATE = "trainer_state.json"
TMP_SUFFIX = ".tmp"


@dataclass
class TrainerState:
    """What a checkpoint holds beside accelerate's states: where the run is, and its best score so far."""

    global_step: int = 0
    best_mean_iou: float = -1.0
    max_train_steps: int = 0

    def save(self, checkpoint: Path) -> None:
        (checkpoint / TRAINER_STATE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, checkpoint: Path) -> TrainerState:
        return cls(**json.loads((checkpoint / TRAINER_STATE).read_text()))


def save_pretrained_atomically(model, image_processor, directory: str | Path, extra_json: dict[str, dict]) -> None:
    """`save_pretrained` into a sibling folder, then move each file into `directory` with an atomic rename.

    Every file in `directory` is at all times either its complete old or its complete new version.
    """
    directory = Path(directory)
    staging = directory.with_name(directory.name + TMP_SUFFIX)
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True)
    image_processor.save_pretrained(staging)
    for name, data in extra_json.items():
        (staging / name).write_text(json.dumps(data, indent=2) + "\n")
    directory.mkdir(parents=True, exist_ok=True)
    for file in sorted(staging.iterdir()):
        os.replace(file, directory / file.name)
    staging.rmdir()


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
        if total_limit:
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
