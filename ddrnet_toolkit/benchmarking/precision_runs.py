"""Short real trainings through `accelerate launch`, one per precision: what a user's `accelerate launch ... train
--mixed_precision P` does on this machine, read back from the run's own files (TensorBoard scalars, the last
checkpoint's trainer state, the evaluation results of `last_model`)."""

from __future__ import annotations

import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..files import read_json_file


@dataclass(frozen=True)
class RunSettings:
    """The run's size: images of `base_size` on the long side cropped to `crop`, `steps` optimizer steps of
    `batch_size` images per process, evaluated once at the end; `logging_steps` apart, the loss and speed are
    logged."""

    variant: str
    steps: int
    batch_size: int
    crop: int
    base_size: int
    learning_rate: float
    num_workers: int
    logging_steps: int


@dataclass
class RunResult:
    """What a finished (or failed) run reports."""

    precision: str
    num_processes: int
    returncode: int
    seconds: float
    log_file: Path
    losses: list[float] = field(default_factory=list)
    images_per_second: float | None = None  # the median over logging intervals, the first (warm-up) left out
    skipped_steps: int | None = None
    mean_iou: float | None = None
    last_model: Path | None = None

    @property
    def losses_finite(self) -> bool:
        return bool(self.losses) and all(math.isfinite(loss) for loss in self.losses)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(precision: str, device_type: str, num_processes: int = 1) -> list[str]:
    """`accelerate launch` of the installed training command (no clone or config file needed) with `precision`
    as the launcher's `--mixed_precision`; several processes run DDP over all GPUs."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1"]
    command += ["--num_processes", str(num_processes), "--mixed_precision", precision, "--dynamo_backend", "no"]
    if device_type == "cpu":
        command.append("--cpu")
    if num_processes > 1:
        command += ["--multi_gpu", "--gpu_ids", "all", "--main_process_port", str(free_port())]
    return [*command, "-m", "ddrnet_toolkit.commands.train"]


def train_arguments(data_dir: Path, output_dir: Path, cache_dir: Path, settings: RunSettings) -> list[str]:
    """train.py's options for a run from scratch that evaluates and checkpoints once, at its end."""
    steps = str(settings.steps)
    return [
        *("--variant", settings.variant, "--data_dir", str(data_dir), "--output_dir", str(output_dir)),
        *("--cache_dir", str(cache_dir), "--max_train_steps", steps, "--eval_steps", steps),
        *("--checkpointing_steps", steps, "--logging_steps", str(settings.logging_steps)),
        *("--per_device_train_batch_size", str(settings.batch_size), "--crop_size", str(settings.crop)),
        *(str(settings.crop), "--base_size", str(settings.base_size), "--learning_rate", str(settings.learning_rate)),
        *("--num_workers", str(settings.num_workers), "--channels_last", "--report_to", "tensorboard"),
        *("--num_eval_images_to_log", "0"),
    ]


def run_training(
    command: list[str], output_dir: Path, log_file: Path, precision: str, timeout: float, num_processes: int = 1
) -> RunResult:
    """Run `command` (a `launch_command` + `train_arguments`), its output to `log_file`, and read its results; a
    run still going after `timeout` seconds is killed with its processes and reported as failed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with open(log_file, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            log.write(f"\nerror: the run did not finish within {timeout:.0f} s and was stopped\n")
            returncode = -signal.SIGKILL
    result = RunResult(precision, num_processes, returncode, time.perf_counter() - start, log_file)
    if returncode == 0:
        read_run(output_dir, result)
    return result


def read_run(output_dir: Path, result: RunResult) -> None:
    """Fill `result` from a finished run's folder."""
    from ..training.checkpointing import TRAINER_STATE, find_latest_checkpoint
    from ..training.tracking import read_logged_scalars

    scalars = read_logged_scalars(output_dir / "logs")
    result.losses = [value for _, value in scalars.get("train/loss", [])]
    speeds = [value for _, value in scalars.get("train/images_per_second", [])[1:]]
    result.images_per_second = statistics.median(speeds) if speeds else None
    checkpoint = find_latest_checkpoint(output_dir / "checkpoints")
    if checkpoint is not None:
        result.skipped_steps = read_json_file(checkpoint / TRAINER_STATE)["skipped_steps"]
    results_file = output_dir / "last_model" / "eval_results.json"
    if results_file.is_file():
        result.mean_iou = read_json_file(results_file)["mean_iou"]
        result.last_model = output_dir / "last_model"


def log_tail(log_file: Path) -> str:
    """The gist of a failed run's log: its last `error:` line, or else its last line."""
    lines = [line.strip() for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:") or "Error" in line]
    return (errors or lines or ["(no output)"])[-1][-300:]
