#!/usr/bin/env python
"""Train DDRNet for semantic segmentation on Cityscapes (or the synthetic Cityscapes) with accelerate.

The defaults are the original recipe: SGD (lr 0.01, momentum 0.9, weight decay 5e-4), poly schedule (power 0.9),
1024x1024 crops of images scaled to 2048 * [0.5, 2.0] on the long side, random flips, batch 8 per device, OHEM
cross entropy with the Cityscapes class weights and an auxiliary head weighted 0.4, 484 epochs.

Examples:
    accelerate launch --config_file configs/accelerate/single_gpu.yaml scripts/train.py \\
        --variant ddrnet-23-slim --data_dir /data/cityscapes --output_dir outputs/ddrnet-23-slim --mixed_precision fp16
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml scripts/train.py \\
        --model_name_or_path checkpoints/ddrnet-23-imagenet --data_dir /data/cityscapes --output_dir outputs/ddrnet-23
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from dataset_builders.cityscapes import CityscapesDataError, load_cityscapes
from modeling_ddrnet import (
    CITYSCAPES_CLASS_NAMES,
    VARIANTS,
    DDRNetConfig,
    DDRNetForSemanticSegmentation,
    DDRNetImageProcessor,
)
from modeling_ddrnet.checkpointing import (
    load_trainer_state,
    resolve_checkpoint,
    save_checkpoint,
    save_pretrained_atomically,
)
from modeling_ddrnet.cityscapes import colorize
from modeling_ddrnet.configuration_ddrnet import NAMED_CLASS_WEIGHTS
from modeling_ddrnet.data import EpochShuffleSampler, TrainAugmentation, TrainDataset
from modeling_ddrnet.evaluation import evaluate_split
from modeling_ddrnet.training import (
    NonFiniteGuard,
    TrainingDiverged,
    check_distributed_setup,
    check_output_dir,
    check_training_arguments,
    make_accelerator,
    poly_schedule,
)

logger = get_logger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_argument_group("model")
    start = model.add_mutually_exclusive_group()
    start.add_argument("--variant", choices=list(VARIANTS), default=None, help="Train from scratch (default 23-slim).")
    start.add_argument("--model_name_or_path", default=None, help="Start from a saved or converted model folder.")
    model.add_argument("--class_weights", choices=[*NAMED_CLASS_WEIGHTS, "none"], default="cityscapes")
    model.add_argument("--no_ohem", action="store_true", help="Plain cross entropy instead of OHEM.")
    model.add_argument(
        "--ignore_mismatched_sizes",
        action="store_true",
        help="Start the heads afresh when --model_name_or_path was trained on another number of classes.",
    )
    model.add_argument("--ohem_min_kept", type=int, default=None, help="OHEM: pixels kept per batch (131072).")

    data = parser.add_argument_group("data")
    data.add_argument("--data_dir", required=True, help="Cityscapes root (leftImg8bit/, gtFine/, lists/).")
    data.add_argument("--list_dir", default=None, help="Folder of the .lst split files (default: <data_dir>/lists).")
    data.add_argument(
        "--train_split", default="train", help="Split to train on (train, or trainval for the test server)."
    )
    data.add_argument("--eval_split", default="validation", help="Split to evaluate on; 'none' to skip.")
    data.add_argument("--cache_dir", default=None, help="datasets cache folder.")
    data.add_argument("--dataset_name", default="cityscapes", help="Dataset name for eval_results.json and cards.")
    data.add_argument("--crop_size", type=int, nargs=2, default=[1024, 1024], metavar=("H", "W"))
    data.add_argument("--base_size", type=int, default=2048, help="Long side before random scaling.")
    data.add_argument("--scale_range", type=float, nargs=2, default=[0.5, 2.0], metavar=("MIN", "MAX"))
    data.add_argument("--num_workers", type=int, default=min(8, os.cpu_count() or 1), help="DataLoader workers.")

    optim = parser.add_argument_group("optimization")
    optim.add_argument("--num_train_epochs", type=int, default=484)
    optim.add_argument("--max_train_steps", type=int, default=None, help="Overrides --num_train_epochs.")
    optim.add_argument("--per_device_train_batch_size", type=int, default=8)
    optim.add_argument("--per_device_eval_batch_size", type=int, default=1)
    optim.add_argument("--gradient_accumulation_steps", type=int, default=1)
    optim.add_argument("--learning_rate", type=float, default=0.01)
    optim.add_argument("--momentum", type=float, default=0.9)
    optim.add_argument("--weight_decay", type=float, default=5e-4)
    optim.add_argument("--poly_power", type=float, default=0.9)
    optim.add_argument("--max_nonfinite_steps", type=int, default=20, help="Stop after this many bad steps in a row.")
    optim.add_argument("--seed", type=int, default=304)

    speed = parser.add_argument_group("speed")
    speed.add_argument("--channels_last", action="store_true", help="NHWC memory format (faster with AMP on GPUs).")
    speed.add_argument("--compile", action="store_true", help="torch.compile the model.")
    speed.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default=None, help="Overrides accelerate.")

    run = parser.add_argument_group("run")
    run.add_argument("--output_dir", required=True)
    run.add_argument("--eval_steps", type=int, default=None, help="Evaluate every N steps (default: every 10 epochs).")
    run.add_argument("--checkpointing_steps", type=int, default=None, help="Checkpoint every N steps (default: epoch).")
    run.add_argument("--checkpoints_total_limit", type=int, default=2)
    run.add_argument("--resume_from_checkpoint", default=None, metavar="PATH|latest")
    run.add_argument("--logging_steps", type=int, default=20)
    run.add_argument("--num_eval_images_to_log", type=int, default=4)
    run.add_argument("--report_to", default="tensorboard", help="accelerate tracker(s), or 'none'.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_training_arguments(args)
    output_dir = Path(args.output_dir)
    check_output_dir(output_dir)
    accelerator = make_accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", level=logging.INFO)
    logger.info(accelerator.state, main_process_only=True)
    check_distributed_setup(accelerator, args.per_device_train_batch_size)
    set_seed(args.seed)

    # Data: prepared once by the main process, then read from the cache by the others.
    with accelerator.main_process_first():
        splits = load_cityscapes(args.data_dir, args.list_dir, args.cache_dir)
    for name in (args.train_split, args.eval_split):
        if name != "none" and name not in splits:
            raise CityscapesDataError(f"Split {name!r} not found; available: {', '.join(splits)}")
    train_split = splits[args.train_split]
    eval_split = None if args.eval_split == "none" else splits[args.eval_split]

    # Model: the loss settings are part of the config, so they are passed when the model is built.
    class_weights = None if args.class_weights == "none" else list(NAMED_CLASS_WEIGHTS[args.class_weights])
    loss_settings = {"class_weights": class_weights}
    loss_settings["use_ohem"] = not args.no_ohem
    if args.ohem_min_kept is not None:
        loss_settings["ohem_min_kept"] = args.ohem_min_kept
    if args.model_name_or_path:
        model = load_starting_model(args.model_name_or_path, args.ignore_mismatched_sizes, loss_settings)
    else:
        model = DDRNetForSemanticSegmentation(
            DDRNetConfig.from_variant(args.variant or "ddrnet-23-slim", **loss_settings)
        )
    image_processor = DDRNetImageProcessor()
    if accelerator.num_processes > 1 and accelerator.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)

    # Data pipeline: augmentation in the workers, seeded per sample draw (see modeling_ddrnet.data).
    augmentation = TrainAugmentation(tuple(args.crop_size), args.base_size, tuple(args.scale_range))
    sampler = EpochShuffleSampler(len(train_split), seed=args.seed)
    train_loader = DataLoader(
        TrainDataset(train_split, augmentation, seed=args.seed),
        batch_size=args.per_device_train_batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=args.num_workers,
        pin_memory=accelerator.device.type == "cuda",
        persistent_workers=args.num_workers > 0,
        prefetch_factor=4 if args.num_workers > 0 else None,
    )
    optimizer = torch.optim.SGD(
        model.parameters(), lr=args.learning_rate, momentum=args.momentum, weight_decay=args.weight_decay, fused=True
    )
    # Momentum buffers exist from the start, so that a skipped first step leaves them well defined.
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            optimizer.state[parameter]["momentum_buffer"] = torch.zeros_like(parameter)

    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    if args.compile:
        model = torch.compile(model)
    steps_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)
    if steps_per_epoch == 0:
        raise ValueError(
            f"The {args.train_split} split has {len(train_split)} images, fewer than one batch of "
            f"{args.per_device_train_batch_size} x {accelerator.num_processes} processes."
        )
    max_train_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(max_train_steps / steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_schedule(max_train_steps, args.poly_power))
    accelerator.register_for_checkpointing(scheduler)
    eval_steps = args.eval_steps or 10 * steps_per_epoch
    checkpointing_steps = args.checkpointing_steps or steps_per_epoch

    effective_batch = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    logger.info(
        f"{len(train_split)} training images, {steps_per_epoch} steps per epoch, {max_train_steps} steps "
        f"({num_epochs} epochs); effective batch size {effective_batch} = {args.per_device_train_batch_size} per "
        f"device x {accelerator.num_processes} processes x {args.gradient_accumulation_steps} accumulation; "
        f"learning rate {args.learning_rate}; mixed precision {accelerator.mixed_precision}"
    )
    if args.report_to != "none":
        hyperparameters = {
            k: (str(v) if isinstance(v, list | tuple) or v is None else v) for k, v in vars(args).items()
        }
        accelerator.init_trackers("ddrnet", config={**hyperparameters, "effective_batch_size": effective_batch})

    global_step, best_miou = 0, -1.0
    checkpoints_dir = output_dir / "checkpoints"
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(args.resume_from_checkpoint, checkpoints_dir)
        if checkpoint is None:
            logger.info("No checkpoint to resume from yet: starting a new run")
        else:
            accelerator.load_state(str(checkpoint))
            state = load_trainer_state(checkpoint)
            global_step, best_miou = state["global_step"], state["best_mean_iou"]
            logger.info(f"Resumed from {checkpoint} at step {global_step}, lr {scheduler.get_last_lr()[0]:.6g}")

    # Preemption: SIGTERM asks the loop to checkpoint and exit at the end of the current step (one process) or of
    # the next logging step, where all processes agree to stop together (several processes).
    stop_requested = {"signal": None}
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_requested.update(signal=signum))

    def stop_flag() -> torch.Tensor:
        return torch.tensor(float(stop_requested["signal"] is not None), device=accelerator.device)

    unwrapped = accelerator.unwrap_model(model)
    guard = NonFiniteGuard(accelerator, optimizer, args.max_nonfinite_steps)
    running_losses = torch.zeros(3, device=accelerator.device)  # total, main, auxiliary
    loss_steps = 0
    stopping = False
    last_log_time, last_log_step = time.perf_counter(), global_step

    def checkpoint(step: int) -> None:
        state = {"global_step": step, "best_mean_iou": best_miou, "max_train_steps": max_train_steps}
        save_checkpoint(accelerator, checkpoints_dir, step, state, args.checkpoints_total_limit)

    def run_evaluation() -> None:
        nonlocal best_miou
        result = evaluate_split(
            unwrapped,
            eval_split,
            accelerator,
            batch_size=args.per_device_eval_batch_size,
            num_workers=min(args.num_workers, 2),
            num_samples_to_keep=args.num_eval_images_to_log,
            channels_last=args.channels_last,
        )
        names = [unwrapped.config.id2label[i] for i in range(unwrapped.config.num_labels)]
        results = {**result.to_json(names), "step": global_step, "split": args.eval_split}
        results["dataset"] = args.dataset_name
        metrics = {f"eval/{k}": results[k] for k in ("mean_iou", "mean_accuracy", "overall_accuracy")}
        metrics.update({f"eval_iou/{name}": value for name, value in results["per_category_iou"].items()})
        accelerator.log({k: v for k, v in metrics.items() if v is not None}, step=global_step)
        log_predictions(accelerator, result.samples, global_step)
        miou = results["mean_iou"] or 0.0
        logger.info(
            f"step {global_step}: {args.eval_split} mIoU {miou:.4f}, mean accuracy "
            f"{results['mean_accuracy'] or 0:.4f}, overall accuracy {results['overall_accuracy'] or 0:.4f}"
        )
        if accelerator.is_main_process:
            extra = {"eval_results.json": results, "training_args.json": training_record(args, effective_batch)}
            save_pretrained_atomically(unwrapped, image_processor, output_dir, extra)
            if miou > best_miou:
                save_pretrained_atomically(unwrapped, image_processor, output_dir / "best_model", extra)
        best_miou = max(best_miou, miou)

    first_epoch = global_step // steps_per_epoch
    progress = tqdm(
        total=max_train_steps, initial=global_step, desc="training", disable=not accelerator.is_local_main_process
    )
    model.train()
    for epoch in range(first_epoch, num_epochs):
        loader = train_loader
        batches_done = (global_step - epoch * steps_per_epoch) * args.gradient_accumulation_steps
        if batches_done > 0:
            loader = accelerator.skip_first_batches(train_loader, batches_done)
        # Through the loader: accelerate re-applies its own epoch counter to the sampler on every iteration.
        loader.set_epoch(epoch)
        for batch in loader:
            pixel_values = batch["pixel_values"]
            if args.channels_last:
                pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)
            with accelerator.accumulate(model):
                outputs = model(pixel_values=pixel_values, labels=batch["labels"])
                accelerator.backward(outputs.loss)
                if accelerator.sync_gradients:
                    guard.check_gradients(model)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            global_step += 1
            progress.update(1)
            auxiliary_loss = outputs.auxiliary_loss if outputs.auxiliary_loss is not None else outputs.main_loss * 0
            running_losses += torch.stack([outputs.loss, outputs.main_loss, auxiliary_loss]).detach().float()
            loss_steps += 1

            if global_step % args.logging_steps == 0 or global_step == max_train_steps:
                # The only host synchronization of the loop, once per logging interval.
                losses = accelerator.reduce(running_losses / loss_steps, "mean").tolist()
                stopping = accelerator.reduce(stop_flag(), "max").item() > 0
                elapsed = time.perf_counter() - last_log_time
                images_per_second = (global_step - last_log_step) * effective_batch / max(elapsed, 1e-9)
                last_log_time, last_log_step = time.perf_counter(), global_step
                accelerator.log(
                    {
                        "train/loss": losses[0],
                        "train/main_loss": losses[1],
                        "train/aux_loss": losses[2],
                        "train/learning_rate": scheduler.get_last_lr()[0],
                        "train/images_per_second": images_per_second,
                    },
                    step=global_step,
                )
                progress.set_postfix(loss=f"{losses[0]:.4f}", lr=f"{scheduler.get_last_lr()[0]:.5f}")
                logger.info(
                    f"step {global_step}/{max_train_steps} epoch {epoch} loss {losses[0]:.4f} (main {losses[1]:.4f}) "
                    f"lr {scheduler.get_last_lr()[0]:.6f} {images_per_second:.1f} images/s"
                )
                running_losses.zero_()
                loss_steps = 0
                guard.raise_if_diverged(global_step)

            if eval_split is not None and (global_step % eval_steps == 0 or global_step == max_train_steps):
                run_evaluation()
            if accelerator.num_processes == 1:
                stopping = stop_requested["signal"] is not None
            if global_step % checkpointing_steps == 0 or stopping:
                guard.raise_if_diverged(global_step)
                checkpoint(global_step)
            if stopping:
                logger.info(
                    f"Received signal {stop_requested['signal'] or 'on another process'}: checkpoint saved "
                    f"at step {global_step}"
                )
                accelerator.end_training()
                return 0
            if global_step >= max_train_steps:
                break
        if global_step >= max_train_steps:
            break
    progress.close()

    guard.raise_if_diverged(global_step)
    if global_step % checkpointing_steps != 0:
        checkpoint(global_step)
    if eval_split is None and accelerator.is_main_process:
        extra = {"training_args.json": training_record(args, effective_batch)}
        save_pretrained_atomically(unwrapped, image_processor, output_dir, extra)
    check_replicas_identical(accelerator, unwrapped)
    accelerator.end_training()
    logger.info(f"Done: model in {output_dir}, best in {output_dir / 'best_model'} (mIoU {best_miou:.4f})")
    return 0


def load_starting_model(path: str, ignore_mismatched_sizes: bool, loss_settings: dict) -> DDRNetForSemanticSegmentation:
    """A saved model, re-headed for the 19 Cityscapes classes when asked to."""
    config = DDRNetConfig.from_pretrained(path)
    if config.num_labels != len(CITYSCAPES_CLASS_NAMES) and not ignore_mismatched_sizes:
        raise ValueError(
            f"--model_name_or_path {path} predicts {config.num_labels} classes but Cityscapes has "
            f"{len(CITYSCAPES_CLASS_NAMES)}; pass --ignore_mismatched_sizes to start the heads afresh."
        )
    labels = {"id2label": dict(enumerate(CITYSCAPES_CLASS_NAMES)), "num_labels": len(CITYSCAPES_CLASS_NAMES)}
    return DDRNetForSemanticSegmentation.from_pretrained(
        path, ignore_mismatched_sizes=ignore_mismatched_sizes, **labels, **loss_settings
    )


def check_replicas_identical(accelerator: Accelerator, model: torch.nn.Module) -> None:
    """DDP keeps every process's weights equal; verify it once at the end (one scalar per parameter)."""
    if accelerator.num_processes == 1:
        return
    sums = torch.stack([p.detach().double().sum() for p in model.parameters()])
    gathered = accelerator.gather(sums[None]).view(accelerator.num_processes, -1)
    if not torch.equal(gathered.min(dim=0).values, gathered.max(dim=0).values):
        raise RuntimeError("The processes ended with different weights: distributed training is out of sync.")
    logger.info(f"Weights identical on all {accelerator.num_processes} processes")


def log_predictions(accelerator: Accelerator, samples: list, step: int) -> None:
    """Validation images beside their predicted and true masks, in the Cityscapes colours."""
    if not samples or not accelerator.is_main_process:
        return
    images = {
        f"eval_images/{i}": np.concatenate([s[0], colorize(s[1]), colorize(s[2])], axis=1)
        for i, s in enumerate(samples)
    }
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.log_images(images, step=step, dataformats="HWC")


def training_record(args: argparse.Namespace, effective_batch: int) -> dict:
    """The hyperparameters a model card reports."""
    keys = (
        "variant", "model_name_or_path", "learning_rate", "momentum", "weight_decay", "poly_power",
        "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs", "max_train_steps",
        "crop_size", "base_size", "scale_range", "class_weights", "no_ohem", "seed", "mixed_precision", "train_split",
    )  # fmt: skip
    return {**{key: getattr(args, key) for key in keys}, "effective_batch_size": effective_batch}


def run() -> int:
    """`main` with the user's mistakes reported as one clear line instead of a traceback."""
    try:
        return main()
    except (CityscapesDataError, TrainingDiverged, ValueError, PermissionError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
