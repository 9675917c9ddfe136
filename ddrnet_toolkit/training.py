"""Pieces of the training loop that are not the loop itself: accelerator, argument checks, optimizer and schedule,
the non-finite step guard, loss logging, preemption and evaluate-and-save."""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger

from dataset_builders.label_space import LabelSpace
from modeling_ddrnet import DDRNetForSemanticSegmentation

from .checkpointing import LABELS_FILE, MODEL_VERSIONS, TrainerState, save_pretrained_atomically
from .cli import UserInputError
from .dataset_options import SelectedDataset
from .evaluation import evaluate_split
from .model_loading import check_finite
from .visualization import colorize

logger = get_logger(__name__)


def make_accelerator(**kwargs) -> Accelerator:
    """An `Accelerator` that runs a multi-process launch on the CPU over gloo when no GPU is visible.

    (accelerate otherwise treats each process of a torchrun-style launch without GPUs as a separate run.)
    """
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Accelerator(cpu=distributed and not torch.cuda.is_available(), **kwargs)


class TrainingDiverged(UserInputError):
    """Too many optimizer steps in a row had non-finite gradients."""


def poly_schedule(
    max_steps: int, power: float = 0.9, warmup_steps: int = 0, warmup_start_factor: float = 0.1
) -> Callable[[int], float]:
    """The original per-iteration schedule, `lr = base_lr * (1 - step / max_steps) ** power`, after an optional
    linear warmup from `warmup_start_factor * base_lr` to `base_lr` over the first `warmup_steps` steps; with a
    warmup, the poly decay runs over the remaining `max_steps - warmup_steps` steps."""
    decay_steps = max_steps - warmup_steps

    def factor(step: int) -> float:
        if step < warmup_steps:
            return warmup_start_factor + (1.0 - warmup_start_factor) * step / warmup_steps
        return (1.0 - min(step - warmup_steps, decay_steps) / decay_steps) ** power

    return factor


def head_parameters(model: DDRNetForSemanticSegmentation) -> list[torch.nn.Parameter]:
    """The parameters that an ImageNet backbone does not provide: the pyramid pooling module and the heads."""
    heads = [model.ddrnet.dappm, model.decode_head, model.aux_head]
    return [parameter for module in heads if module is not None for parameter in module.parameters()]


def sgd_with_momentum_buffers(
    model: DDRNetForSemanticSegmentation,
    learning_rate: float,
    momentum: float,
    weight_decay: float,
    head_lr_multiplier: float = 1.0,
) -> torch.optim.SGD:
    """The original optimizer (fused SGD), with the heads and DAPPM in a second parameter group at
    `head_lr_multiplier` times the backbone's learning rate when the multiplier is not 1.

    Momentum buffers exist from the start, so that a skipped first step leaves them well defined (the fused kernel
    would otherwise create them uninitialized)."""
    if head_lr_multiplier == 1.0:
        groups = [{"params": list(model.parameters())}]
    else:
        heads = {id(parameter) for parameter in head_parameters(model)}
        groups = [
            {"params": [p for p in model.parameters() if id(p) not in heads], "lr": learning_rate},
            {"params": head_parameters(model), "lr": learning_rate * head_lr_multiplier},
        ]
    optimizer = torch.optim.SGD(groups, lr=learning_rate, momentum=momentum, weight_decay=weight_decay, fused=True)
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            optimizer.state[parameter]["momentum_buffer"] = torch.zeros_like(parameter)
    return optimizer


def check_training_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Reject values that would fail deep inside torch, naming the argument at fault (exit status 2)."""
    positive = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps")
    positive += ("logging_steps", "num_train_epochs", "base_size")
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("max_train_steps", "eval_steps", "checkpointing_steps", "ohem_min_kept"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1, got {value}")
    if args.max_nonfinite_steps < 1:
        parser.error(f"--max_nonfinite_steps must be at least 1, got {args.max_nonfinite_steps}")
    for name in ("num_workers", "checkpoints_total_limit", "num_eval_images_to_log"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0, got {getattr(args, name)}")
    for name, low, high in (("poly_power", 0.0, math.inf), ("momentum", 0.0, 1.0), ("weight_decay", 0.0, math.inf)):
        value = getattr(args, name)
        if not (math.isfinite(value) and low <= value < high):
            parser.error(f"--{name} must be a finite number in [{low:g}, {high:g}), got {value}")
    if min(args.crop_size) < 1:
        parser.error(f"--crop_size must be positive, got {args.crop_size}")
    low, high = args.scale_range
    if not (math.isfinite(high) and 0 < low <= high):
        parser.error(f"--scale_range must satisfy 0 < MIN <= MAX, got {args.scale_range}")
    largest = args.base_size * high
    if max(args.crop_size) > largest:
        parser.error(
            f"--crop_size {args.crop_size[0]} {args.crop_size[1]} is larger than the largest scaled image "
            f"(--base_size {args.base_size} x {high} = {largest:g} on the long side): every crop would be mostly "
            "padding. Lower --crop_size or raise --base_size/--scale_range."
        )
    if not math.isfinite(args.learning_rate) or args.learning_rate <= 0:
        parser.error(f"--learning_rate must be a positive number, got {args.learning_rate}")
    if args.warmup_steps < 0:
        parser.error(f"--warmup_steps must be >= 0, got {args.warmup_steps}")
    for name, low, high, closed in (
        ("ema_decay", 0.0, 1.0, False),
        ("warmup_start_factor", 0.0, 1.0, True),
        ("rare_class_probability", 0.0, 1.0, True),
        ("color_jitter", 0.0, 1.0, False),
    ):
        value = getattr(args, name)
        if not (low <= value <= high if closed else low <= value < high):
            parser.error(f"--{name} must be in [{low:g}, {high:g}{']' if closed else ')'}, got {value}")
    if not (math.isfinite(args.head_lr_multiplier) and args.head_lr_multiplier > 0):
        parser.error(f"--head_lr_multiplier must be a positive number, got {args.head_lr_multiplier}")


# The resolved options of a run (a recipe that `--config` replays), in its --output_dir.
TRAIN_CONFIG = "train_config.yaml"
# What a training run writes into its --output_dir (and --overwrite_output_dir replaces); nothing else is touched.
RUN_OUTPUTS = ("checkpoints", "last_model", "best_model", MODEL_VERSIONS, "logs", TRAIN_CONFIG)


def prepare_output_dir(output_dir: Path, overwrite: bool, resuming: bool) -> None:
    """Create `output_dir`, check that it is writable, and refuse to write a new run over a previous one unless
    `--overwrite_output_dir` (then only the previous run's outputs are removed) or a resume is asked for."""
    previous = [name for name in RUN_OUTPUTS if (output_dir / name).exists() or (output_dir / name).is_symlink()]
    if previous and not resuming:
        if not overwrite:
            raise UserInputError(
                f"--output_dir {output_dir} already holds a training run ({', '.join(previous)}): pass "
                "--resume_from_checkpoint latest to continue it, or --overwrite_output_dir to replace it"
            )
        for name in previous:
            path = output_dir / name
            path.unlink() if path.is_symlink() or path.is_file() else shutil.rmtree(path)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir):
            pass
    except OSError as error:
        raise UserInputError(f"--output_dir {output_dir} cannot be written: {error.strerror or error}") from error


def check_distributed_setup(accelerator: Accelerator, per_device_batch_size: int) -> None:
    if accelerator.device.type == "cuda" and accelerator.local_process_index >= torch.cuda.device_count():
        raise UserInputError(
            f"{accelerator.num_processes} processes were launched but this machine has {torch.cuda.device_count()} "
            "GPU(s): lower --num_processes in the accelerate config."
        )
    if per_device_batch_size == 1 and not (accelerator.num_processes > 1 and accelerator.device.type == "cuda"):
        raise UserInputError(
            "--per_device_train_batch_size 1 cannot train DDRNet: the global-pooling branch of DAPPM applies "
            "BatchNorm to a 1x1 map, which needs at least 2 samples (or SyncBatchNorm across several GPUs)."
        )


@dataclass(frozen=True)
class TrainingPlan:
    """How long the run is and when it evaluates and checkpoints, in optimizer steps."""

    steps_per_epoch: int
    max_train_steps: int
    eval_steps: int
    checkpointing_steps: int

    @property
    def num_epochs(self) -> int:
        return math.ceil(self.max_train_steps / self.steps_per_epoch)

    @classmethod
    def from_arguments(cls, args: argparse.Namespace, batches_per_epoch: int) -> TrainingPlan:
        steps_per_epoch = math.ceil(batches_per_epoch / args.gradient_accumulation_steps)
        if steps_per_epoch == 0:
            raise UserInputError(
                f"The {args.train_split} split has fewer images than one batch of {args.per_device_train_batch_size} "
                "per process: lower --per_device_train_batch_size or add images."
            )
        return cls(
            steps_per_epoch=steps_per_epoch,
            max_train_steps=args.max_train_steps or args.num_train_epochs * steps_per_epoch,
            eval_steps=args.eval_steps or 10 * steps_per_epoch,
            checkpointing_steps=args.checkpointing_steps or steps_per_epoch,
        )


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


class LossMeter:
    """Sums the total, main and auxiliary losses on the device; the host reads them once per logging interval."""

    def __init__(self, accelerator: Accelerator, images_per_step: int, start_step: int):
        self.accelerator = accelerator
        self.images_per_step = images_per_step
        self.sums = torch.zeros(3, device=accelerator.device)
        self.count = 0
        self.since_time, self.since_step = time.perf_counter(), start_step

    def add(self, outputs) -> None:
        auxiliary = outputs.auxiliary_loss if outputs.auxiliary_loss is not None else outputs.main_loss * 0
        self.sums += torch.stack([outputs.loss, outputs.main_loss, auxiliary]).detach().float()
        self.count += 1

    def read(self, step: int) -> dict[str, float]:
        """Mean losses over all processes since the last read, and the images per second (a host sync)."""
        total, main, auxiliary = self.accelerator.reduce(self.sums / max(self.count, 1), "mean").tolist()
        elapsed = max(time.perf_counter() - self.since_time, 1e-9)
        images_per_second = (step - self.since_step) * self.images_per_step / elapsed
        self.sums.zero_()
        self.count = 0
        self.since_time, self.since_step = time.perf_counter(), step
        return {"loss": total, "main_loss": main, "aux_loss": auxiliary, "images_per_second": images_per_second}


class Preemption:
    """SIGTERM asks the run to checkpoint and stop at the end of a step.

    With one process it stops at the next step. Several processes must stop together, so they agree through a
    collective at the next synchronization point (a logging step).
    """

    def __init__(self, accelerator: Accelerator):
        self.accelerator = accelerator
        self.signal: int | None = None
        signal.signal(signal.SIGTERM, self._record)

    def _record(self, signum: int, frame) -> None:
        self.signal = signum

    def should_stop(self, at_sync_point: bool) -> bool:
        if self.accelerator.num_processes == 1:
            return self.signal is not None
        if not at_sync_point:
            return False
        requested = torch.tensor(float(self.signal is not None), device=self.accelerator.device)
        return self.accelerator.reduce(requested, "max").item() > 0

    def describe(self) -> str:
        return f"signal {self.signal}" if self.signal is not None else "a signal on another process"


@dataclass
class PeriodicEvaluation:
    """Evaluate during training: log the scores and sample pictures, save the latest model into `output_dir` and,
    when the score improves, into `output_dir/best_model` (both atomically, by the main process)."""

    split: object
    split_name: str
    dataset_name: str
    label_space: LabelSpace
    output_dir: Path
    batch_size: int
    num_workers: int
    num_images_to_log: int
    channels_last: bool
    training_record: dict

    @classmethod
    def from_arguments(
        cls, args: argparse.Namespace, split, dataset: SelectedDataset, training_record: dict
    ) -> PeriodicEvaluation:
        """The evaluation `scripts/train.py`'s arguments ask for."""
        return cls(
            split=split,
            split_name=args.eval_split,
            dataset_name=dataset.name,
            label_space=dataset.label_space,
            output_dir=Path(args.output_dir),
            batch_size=args.per_device_eval_batch_size,
            num_workers=min(args.num_workers, 2),
            num_images_to_log=args.num_eval_images_to_log,
            channels_last=args.channels_last,
            training_record=training_record,
        )

    def __call__(self, model, image_processor, accelerator: Accelerator, state: TrainerState) -> None:
        result = evaluate_split(
            model,
            self.split,
            accelerator,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            num_samples_to_keep=self.num_images_to_log,
            channels_last=self.channels_last,
        )
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        results = {**result.to_json(names), "step": state.global_step, "split": self.split_name}
        results["dataset"] = self.dataset_name
        metrics = {f"eval/{k}": results[k] for k in ("mean_iou", "mean_accuracy", "overall_accuracy")}
        metrics.update({f"eval_iou/{name}": value for name, value in results["per_category_iou"].items()})
        accelerator.log({k: v for k, v in metrics.items() if v is not None}, step=state.global_step)
        log_prediction_images(accelerator, result.samples, state.global_step, self.label_space.palette)
        miou = results["mean_iou"] or 0.0
        logger.info(
            f"step {state.global_step}: {self.split_name} mIoU {miou:.4f}, mean accuracy "
            f"{results['mean_accuracy'] or 0:.4f}, overall accuracy {results['overall_accuracy'] or 0:.4f}"
        )
        if accelerator.is_main_process:
            check_weights_finite(model, state.global_step)
            extra = {"eval_results.json": results, "training_args.json": self.training_record}
            extra[LABELS_FILE] = self.label_space.to_labels_file()
            save_pretrained_atomically(model, image_processor, self.output_dir / "last_model", extra)
            if miou > state.best_mean_iou:
                save_pretrained_atomically(model, image_processor, self.output_dir / "best_model", extra)
        state.best_mean_iou = max(state.best_mean_iou, miou)


def check_weights_finite(model: torch.nn.Module, step: int) -> None:
    """A model with NaN or infinite weights or statistics cannot be right: stop instead of saving it."""
    try:
        check_finite(model, f"the model at step {step}")
    except UserInputError as error:
        raise TrainingDiverged(f"{error}; nothing was saved. Lower the learning rate or check the data.") from error


def log_prediction_images(accelerator: Accelerator, samples: list, step: int, palette: np.ndarray) -> None:
    """Validation images beside their predicted and true masks, in the dataset's colours."""
    if not samples or not accelerator.is_main_process:
        return
    images = {
        f"eval_images/{i}": np.concatenate([image, colorize(prediction, palette), colorize(label, palette)], axis=1)
        for i, (image, prediction, label) in enumerate(samples)
    }
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.log_images(images, step=step, dataformats="HWC")


# Accelerators of finished distributed runs, kept alive until the process exits (see `end_run`).
_FINISHED_DISTRIBUTED_RUNS: list[Accelerator] = []


def end_run(accelerator: Accelerator) -> None:
    """Close the trackers; in a distributed run, wait for every process and keep the process group alive.

    Nothing is torn down: a gloo process group's destructor can deadlock (see `cli.exit_process`), and the DDP
    reducer destroys it when the prepared model dies. So the accelerator, which holds the models, stays referenced
    and `cli.run_script` ends a distributed process without running destructors.
    """
    for tracker in accelerator.trackers:
        tracker.finish()
    if accelerator.num_processes > 1:
        accelerator.wait_for_everyone()
        _FINISHED_DISTRIBUTED_RUNS.append(accelerator)


def check_replicas_identical(accelerator: Accelerator, model: torch.nn.Module) -> None:
    """DDP keeps every process's weights equal; verify it once at the end (one scalar per parameter)."""
    if accelerator.num_processes == 1:
        return
    sums = torch.stack([p.detach().double().sum() for p in model.parameters()])
    gathered = accelerator.gather(sums[None]).view(accelerator.num_processes, -1)
    if not torch.equal(gathered.min(dim=0).values, gathered.max(dim=0).values):
        raise RuntimeError("The processes ended with different weights: distributed training is out of sync.")
    logger.info(f"Weights identical on all {accelerator.num_processes} processes")
