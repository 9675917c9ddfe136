"""The output folder of a training run: what a run writes there, and refusing to write a new run over an old one."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import UserInputError
from ..files import writable_folder
from ..model_folder import MODEL_VERSIONS

# The resolved options of a run (a recipe that `--config` replays).
TRAIN_CONFIG = "train_config.yaml"
# What a training run writes into its output folder (and replacing the run removes); nothing else is touched.
RUN_OUTPUTS = ("checkpoints", "last_model", "best_model", MODEL_VERSIONS, "logs", TRAIN_CONFIG)


def previous_run_outputs(output_dir: Path) -> list[str]:
    return [name for name in RUN_OUTPUTS if (output_dir / name).exists() or (output_dir / name).is_symlink()]


def prepare_output_dir(output_dir: Path, overwrite: bool, resuming: bool) -> None:
    """Create `output_dir` and check that it is writable; refuse to write a new run over a previous one unless
    `overwrite` (then only the previous run's outputs are removed) or `resuming`."""
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
    writable_folder(output_dir, "--output_dir")
