"""The accelerator of a run: creating it, the checks that depend on it, and the end of a distributed run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import InitProcessGroupKwargs
from torch.utils.data import DataLoader

from ..errors import UserInputError

logger = get_logger(__name__)


def make_accelerator(*, timeout_seconds: float | None = None, **kwargs) -> Accelerator:
    """An `Accelerator` that runs a multi-process launch on the CPU over gloo when no GPU is visible, and runs fp16 on
    a CPU as it does on a GPU.

    (accelerate otherwise treats each process of a torchrun-style launch without GPUs as a separate run, and on a
    CPU leaves fp16 off while reporting it on: the run would train in fp32.) `timeout_seconds` bounds every wait of a
    distributed run for its other processes (collectives, barriers): a process whose peer hangs or whose machine is
    lost stops after it instead of waiting forever (torch's default is 30 minutes for gloo and 10 for NCCL).
    """
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    handlers = [] if timeout_seconds is None else [InitProcessGroupKwargs(timeout=timedelta(seconds=timeout_seconds))]
    accelerator = Accelerator(cpu=distributed and not torch.cuda.is_available(), kwargs_handlers=handlers, **kwargs)
    if accelerator.mixed_precision == "fp16" and accelerator.device.type == "cpu" and not accelerator.native_amp:
        enable_cpu_float16(accelerator)
    return accelerator


def enable_cpu_float16(accelerator: Accelerator) -> None:
    """float16 autocast and a gradient scaler on the CPU, what accelerate sets up for fp16 on a GPU: models prepared
    afterwards run under autocast, `backward` scales the loss, prepared optimizers step through the scaler, and
    `save_state`/`load_state` keep its state. The scaler takes accelerate's `GradScalerKwargs` when given."""
    options = accelerator.scaler_handler.to_kwargs() if accelerator.scaler_handler is not None else {}
    accelerator.native_amp = True
    accelerator.scaler = torch.amp.GradScaler("cpu", **options)


def check_distributed_setup(accelerator: Accelerator, per_device_batch_size: int) -> None:
    if accelerator.device.type == "cuda" and accelerator.local_process_index >= torch.cuda.device_count():
        raise UserInputError(
            f"{accelerator.num_processes} processes were launched but this machine has {torch.cuda.device_count()} "
            "GPU(s): lower --num_processes in the accelerate config."
        )
    if per_device_batch_size == 1 and not uses_sync_batch_norm(accelerator):
        raise UserInputError(
            "--per_device_train_batch_size 1 cannot train DDRNet: the global-pooling branch of DAPPM applies "
            "BatchNorm to a 1x1 map, which needs at least 2 samples (or SyncBatchNorm across several GPUs)."
        )


def uses_sync_batch_norm(accelerator: Accelerator) -> bool:
    """Several GPUs share their BatchNorm statistics (as the paper's training did); gloo on CPUs cannot."""
    return accelerator.num_processes > 1 and accelerator.device.type == "cuda"


def prepare_model_layout(model: torch.nn.Module, accelerator: Accelerator, channels_last: bool) -> torch.nn.Module:
    """SyncBatchNorm on several GPUs, and the channels_last memory format when asked for."""
    if uses_sync_batch_norm(accelerator):
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        logger.info(f"BatchNorm synchronized across the {accelerator.num_processes} GPUs (SyncBatchNorm)")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


# Accelerators of finished distributed runs, kept alive until the process exits (see `end_run`).
_FINISHED_DISTRIBUTED_RUNS: list[Accelerator] = []


def end_run(accelerator: Accelerator) -> None:
    """Close the trackers; in a distributed run, wait for every process and keep the process group alive.

    Nothing is torn down: a gloo process group's destructor can deadlock (see `commands.runner.exit_process`), and
    the DDP reducer destroys it when the prepared model dies. So the accelerator, which holds the models, stays
    referenced and the command runner ends a distributed process without running destructors.
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


def share_main_process_buffers(accelerator: Accelerator, model: torch.nn.Module) -> None:
    """Give every process's copy of `model` the main process's buffers (the BatchNorm statistics).

    DDP broadcasts them from the main process at the start of each training forward pass, after which each process
    updates its own from its own batch (SyncBatchNorm, on GPUs only, keeps them equal). An evaluation that the
    processes share must score one model, the one the main process saves; the next forward pass would broadcast the
    same values anyway.
    """
    if accelerator.num_processes == 1:
        return
    for buffer in model.buffers():
        torch.distributed.broadcast(buffer.data, src=0)


def remaining_batches(
    accelerator: Accelerator, loader: DataLoader, first_epoch: int, num_epochs: int, batches_done: int
) -> Iterator[tuple[int, dict]]:
    """`(epoch, batch)` from `first_epoch` to the last epoch, the first epoch without its `batches_done` batches
    (those a resumed run has trained on), in the seeded order of each epoch."""
    for epoch in range(first_epoch, num_epochs):
        epoch_loader = accelerator.skip_first_batches(loader, batches_done) if batches_done else loader
        batches_done = 0
        # Through the loader: accelerate re-applies its own epoch counter to the sampler on every iteration.
        epoch_loader.set_epoch(epoch)
        for batch in epoch_loader:
            yield epoch, batch
