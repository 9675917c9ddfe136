"""The output folder of a training run: one run at a time owns it, and a new run never writes over an old one.

A run holds an exclusive lock on the folder itself for its whole life (an `flock` of the folder: the system drops
it when the process ends, however it ends, so a crashed run leaves nothing stuck, and no file is added); a second
run into the folder is refused while the first holds it. Only then are a previous run's outputs replaced, and only
with `overwrite`.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from ..errors import UserInputError
from ..files import check_folder_creatable, writable_folder
from ..model_folder import MODEL_VERSIONS

# The resolved options of a run (a recipe that `--config` replays).
TRAIN_CONFIG = "train_config.yaml"
# What a training run writes into its output folder (and replacing the run removes); nothing else is touched.
RUN_OUTPUTS = ("checkpoints", "last_model", "best_model", MODEL_VERSIONS, "logs", TRAIN_CONFIG)
# The folder locks this process holds (folder -> open descriptor), kept until it exits: a process that runs
# several trainings one after the other (a notebook, a test) owns its folders the whole time.
_HELD_LOCKS: dict[Path, int] = {}


def previous_run_outputs(output_dir: Path) -> list[str]:
    return [name for name in RUN_OUTPUTS if (output_dir / name).exists() or (output_dir / name).is_symlink()]


def lock_run_folder(output_dir: Path) -> None:
    """Take `output_dir`'s lock for the life of this process, or refuse: another run holds it."""
    folder = output_dir.resolve()
    if folder in _HELD_LOCKS:
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise UserInputError(
            f"--output_dir {output_dir} is in use by another training run: wait for it to end, or choose another folder"
        ) from None
    _HELD_LOCKS[folder] = descriptor


def claim_run_folder(output_dir: Path, overwrite: bool, resuming: bool) -> None:
    """Create `output_dir` and own it for this run (see the module docstring); refuse to write a new run over a
    previous one unless `overwrite` (then only the previous run's outputs are removed) or `resuming`."""
    check_folder_creatable(output_dir, "--output_dir")
    writable_folder(output_dir, "--output_dir")
    lock_run_folder(output_dir)
    previous = previous_run_outputs(output_dir)
    if previous and not resuming:
        if not overwrite:
            raise UserInputError(
                f"--output_dir {output_dir} already holds a training run ({', '.join(previous)}): pass "
                "--resume_from_checkpoint latest to continue it, or --overwrite_output_dir to replace it"
            )
        for name in previous:
            path = output_dir / name
            path.unlink() if path.is_symlink() or path.is_file() else shutil.rmtree(path)
