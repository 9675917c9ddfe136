#!/usr/bin/env python
"""Train DDRNet for semantic segmentation on Cityscapes (or the synthetic Cityscapes) with accelerate.

The defaults are the original recipe: SGD (lr 0.01, momentum 0.9, weight decay 5e-4), poly schedule (power 0.9),
1024x1024 crops of images scaled to 2048 * [0.5, 2.0] on the long side, random flips, batch 8 per device, OHEM
cross entropy with the Cityscapes class weights and an auxiliary head weighted 0.4, 484 epochs. Recipes in
configs/recipes/ (`--config FILE`) hold the paper's settings per variant, a fine-tuning recipe and a "plus" recipe
with the techniques the original leaves off (EMA of the weights, warmup, a higher learning rate for the heads,
rare-class crops, colour jitter); flags on the command line override a recipe's values. Every run writes its
resolved options to <output_dir>/train_config.yaml, which `--config` replays.

Examples:
    accelerate launch scripts/train.py --config configs/recipes/cityscapes-plus.yaml \\
        --model_name_or_path checkpoints/ddrnet-23-slim-imagenet --data_dir /data/cityscapes --output_dir outputs/plus
    accelerate launch --config_file configs/accelerate/single_gpu.yaml scripts/train.py \\
        --variant ddrnet-23-slim --data_dir /data/cityscapes --output_dir outputs/ddrnet-23-slim --mixed_precision fp16
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml scripts/train.py \\
        --model_name_or_path checkpoints/ddrnet-23-imagenet --data_dir /data/cityscapes --output_dir outputs/ddrnet-23
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration, set_seed
from tqdm.auto import tqdm

from ddrnet_toolkit.checkpointing import (
    LABELS_FILE,
    TrainerState,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
    save_pretrained_atomically,
)
from ddrnet_toolkit.class_weights import FORMULA as CLASS_WEIGHTS_FORMULA
from ddrnet_toolkit.class_weights import count_label_pixels, weights_from_counts
from ddrnet_toolkit.cli import UserInputError, run_script
from ddrnet_toolkit.data import TrainAugmentation, normalize_on_device, train_dataloader
from ddrnet_toolkit.dataset_options import (
    SelectedDataset,
    add_dataset_arguments,
    check_dataset_arguments,
    load_dataset_from_arguments,
)
from ddrnet_toolkit.model_loading import check_model_folder
from ddrnet_toolkit.recipes import add_config_argument, parse_args_with_config, resolved_recipe, write_recipe
from ddrnet_toolkit.training import (
    TRAIN_CONFIG,
    LossMeter,
    NonFiniteGuard,
    PeriodicEvaluation,
    Preemption,
    TrainingPlan,
    check_distributed_setup,
    check_replicas_identical,
    check_training_arguments,
    check_weights_finite,
    end_run,
    make_accelerator,
    poly_schedule,
    prepare_output_dir,
    sgd_with_momentum_buffers,
)
from ddrnet_toolkit.weight_averaging import WeightAverage
from modeling_ddrnet import (
    VARIANTS,
    DDRNetConfig,
    DDRNetForSemanticSegmentation,
    DDRNetImageProcessor,
)
from modeling_ddrnet.configuration_ddrnet import NAMED_CLASS_WEIGHTS

logger = get_logger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(parser)
    model = parser.add_argument_group("model")
    start = model.add_mutually_exclusive_group()
    start.add_argument("--variant", choices=list(VARIANTS), default=None, help="Train from scratch (default 23-slim).")
    start.add_argument("--model_name_or_path", default=None, help="Start from a saved or converted model folder.")
    model.add_argument(
        "--class_weights",
        choices=[*NAMED_CLASS_WEIGHTS, "auto", "none"],
        default=None,
        help="Loss weight per class: the Cityscapes recipe's, auto (from the training labels' pixel shares, see "
        "ddrnet_toolkit/class_weights.py), or none. Default: cityscapes on Cityscapes, none elsewhere.",
    )
    model.add_argument("--no_ohem", action="store_true", help="Plain cross entropy instead of OHEM.")
    model.add_argument(
        "--ignore_mismatched_sizes",
        action="store_true",
        help="Start the heads afresh when --model_name_or_path was trained on other classes (the backbone is kept).",
    )
    model.add_argument("--ohem_min_kept", type=int, default=None, help="OHEM: pixels kept per batch (131072).")

    add_dataset_arguments(parser)
    data = parser.add_argument_group("data pipeline")
    data.add_argument(
        "--train_split", default="train", help="Split to train on (train, or trainval for the test server)."
    )
    data.add_argument("--eval_split", default="validation", help="Split to evaluate on; 'none' to skip.")
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

    extras = parser.add_argument_group("techniques beyond the paper's recipe (all off by default)")
    extras.add_argument(
        "--ema_decay",
        type=float,
        default=0.0,
        help="Keep an exponential moving average of the weights with this decay (e.g. 0.9999; 0: off); the average "
        "is what is evaluated and saved as best_model/last_model.",
    )
    extras.add_argument("--warmup_steps", type=int, default=0, help="Linear warmup steps before the poly decay.")
    extras.add_argument(
        "--warmup_start_factor", type=float, default=0.1, help="Warmup starts at this fraction of the learning rate."
    )
    extras.add_argument(
        "--head_lr_multiplier",
        type=float,
        default=1.0,
        help="Learning rate of DAPPM and the heads relative to the backbone's (10 over an ImageNet backbone).",
    )
    extras.add_argument(
        "--rare_class_probability",
        type=float,
        default=0.0,
        help="Probability that a crop is placed around a class drawn uniformly from those in the image.",
    )
    extras.add_argument(
        "--color_jitter", type=float, default=0.0, help="Brightness, contrast and saturation jitter strength (0.5)."
    )

    speed = parser.add_argument_group("speed")
    speed.add_argument("--channels_last", action="store_true", help="NHWC memory format (faster with AMP on GPUs).")
    speed.add_argument("--compile", action="store_true", help="torch.compile the model.")
    speed.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default=None, help="Overrides accelerate.")

    run = parser.add_argument_group("run")
    run.add_argument("--output_dir", required=True)
    run.add_argument("--eval_steps", type=int, default=None, help="Evaluate every N steps (default: every 10 epochs).")
    run.add_argument("--checkpointing_steps", type=int, default=None, help="Checkpoint every N steps (default: epoch).")
    run.add_argument("--checkpoints_total_limit", type=int, default=2, help="Checkpoints kept (0: all).")
    start_or_replace = run.add_mutually_exclusive_group()
    start_or_replace.add_argument(
        "--resume_from_checkpoint", default=None, metavar="PATH|latest", help="Continue a run (a no-op if finished)."
    )
    start_or_replace.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="Replace a previous run in --output_dir (its checkpoints, models and logs); other files stay.",
    )
    run.add_argument("--logging_steps", type=int, default=20)
    run.add_argument("--num_eval_images_to_log", type=int, default=4)
    run.add_argument("--report_to", default="tensorboard", help="accelerate tracker(s), or 'none'.")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parse_args_with_config(parser, argv)
    check_dataset_arguments(args, parser)
    check_training_arguments(args, parser)
    return args


def main(argv: list[str] | None = None) -> int:
    # Arguments and accelerator.
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    prepare_output_dir(output_dir, args.overwrite_output_dir, resuming=args.resume_from_checkpoint is not None)
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
        dataset = load_dataset_from_arguments(args)
    train_split, eval_split = select_splits(dataset.splits, args.train_split, args.eval_split)
    augmentation = train_augmentation(args, dataset.label_space.ignore_index)
    pin_memory = accelerator.device.type == "cuda"
    train_loader = train_dataloader(
        train_split, augmentation, args.per_device_train_batch_size, args.num_workers, args.seed, pin_memory
    )

    # Model.
    model = build_model(args, dataset, train_split)
    image_processor = DDRNetImageProcessor()
    if accelerator.num_processes > 1 and accelerator.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)

    # Optimizer and schedule.
    optimizer = sgd_with_momentum_buffers(
        model, args.learning_rate, args.momentum, args.weight_decay, args.head_lr_multiplier
    )
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    if args.compile:
        model = torch.compile(model)
    plan = TrainingPlan.from_arguments(args, len(train_loader))
    scheduler = learning_rate_scheduler(args, optimizer, plan.max_train_steps)
    accelerator.register_for_checkpointing(scheduler)
    # The average of the weights, when asked for, is the model that is evaluated and saved.
    unwrapped = accelerator.unwrap_model(model)
    average = WeightAverage(unwrapped, args.ema_decay) if args.ema_decay > 0 else None
    if average is not None:
        accelerator.register_for_checkpointing(average)
    published = average.model if average is not None else unwrapped
    effective_batch = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    logger.info(
        f"{len(train_split)} training images, {plan.steps_per_epoch} steps per epoch, {plan.max_train_steps} steps "
        f"({plan.num_epochs} epochs); effective batch size {effective_batch} = {args.per_device_train_batch_size} "
        f"per device x {accelerator.num_processes} processes x {args.gradient_accumulation_steps} accumulation; "
        f"learning rate {args.learning_rate}; mixed precision {accelerator.mixed_precision}"
    )

    # Resume: a finished run stays as it is.
    checkpoints_dir = output_dir / "checkpoints"
    architecture = architecture_of(unwrapped.config)
    state = start_or_resume(args, accelerator, plan, architecture, checkpoints_dir, scheduler)
    if state.global_step >= plan.max_train_steps:
        logger.info(f"The run in {output_dir} ended at step {state.global_step}: nothing to do")
        end_run(accelerator)
        return 0

    record = training_record(args, effective_batch, dataset, unwrapped.config)
    if accelerator.is_main_process:
        replay = f"accelerate launch scripts/train.py --config {output_dir / TRAIN_CONFIG} --output_dir NEW_FOLDER"
        write_recipe(resolved_recipe(args), output_dir / TRAIN_CONFIG, f"Every option of this run. Replay:\n{replay}")
    if args.report_to != "none":
        # TensorBoard's hyperparameter view takes numbers, strings and booleans only.
        hyperparameters = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in vars(args).items()}
        accelerator.init_trackers("ddrnet", config={**hyperparameters, "effective_batch_size": effective_batch})

    # Training loop.
    evaluation = None
    if eval_split is not None:
        evaluation = PeriodicEvaluation.from_arguments(args, eval_split, dataset, record)
    guard = NonFiniteGuard(accelerator, optimizer, args.max_nonfinite_steps)
    losses = LossMeter(accelerator, effective_batch, state.global_step)
    preemption = Preemption(accelerator)
    progress = tqdm(
        total=plan.max_train_steps,
        initial=state.global_step,
        desc="training",
        disable=not accelerator.is_local_main_process,
    )
    model.train()
    for epoch in range(state.global_step // plan.steps_per_epoch, plan.num_epochs):
        loader = train_loader
        batches_done = (state.global_step - epoch * plan.steps_per_epoch) * args.gradient_accumulation_steps
        if batches_done > 0:
            loader = accelerator.skip_first_batches(train_loader, batches_done)
        # Through the loader: accelerate re-applies its own epoch counter to the sampler on every iteration.
        loader.set_epoch(epoch)
        for batch in loader:
            pixel_values, labels = normalize_on_device(batch, args.channels_last)  # uint8 -> float, on the device
            with accelerator.accumulate(model):
                outputs = model(pixel_values=pixel_values, labels=labels)
                accelerator.backward(outputs.loss)
                if accelerator.sync_gradients:
                    guard.check_gradients(model)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            if average is not None:
                average.update(unwrapped)
            state.global_step += 1
            progress.update(1)
            losses.add(outputs)

            is_logging_step = state.global_step % args.logging_steps == 0 or state.global_step == plan.max_train_steps
            if is_logging_step:  # the only host synchronization of the loop
                log_training_step(accelerator, losses, scheduler, progress, state.global_step, plan, epoch)
                guard.raise_if_diverged(state.global_step)
            if evaluation and (state.global_step % plan.eval_steps == 0 or state.global_step == plan.max_train_steps):
                evaluation(published, image_processor, accelerator, state)
            stopping = preemption.should_stop(at_sync_point=is_logging_step)
            if state.global_step % plan.checkpointing_steps == 0 or stopping:
                guard.raise_if_diverged(state.global_step)
                save_checkpoint(accelerator, checkpoints_dir, state, args.checkpoints_total_limit)
            if stopping:
                logger.info(f"Received {preemption.describe()}: checkpoint saved at step {state.global_step}")
                end_run(accelerator)
                return 0
            if state.global_step >= plan.max_train_steps:
                break
        if state.global_step >= plan.max_train_steps:
            break
    progress.close()

    # Save.
    guard.raise_if_diverged(state.global_step)
    if state.global_step % plan.checkpointing_steps != 0:
        save_checkpoint(accelerator, checkpoints_dir, state, args.checkpoints_total_limit)
    if evaluation is None and accelerator.is_main_process:
        check_weights_finite(published, state.global_step)
        extra = {"training_args.json": record, LABELS_FILE: dataset.label_space.to_labels_file()}
        save_pretrained_atomically(published, image_processor, output_dir / "last_model", extra)
    check_replicas_identical(accelerator, unwrapped)
    end_run(accelerator)
    logger.info(
        f"Done: last model in {output_dir / 'last_model'}, best in {output_dir / 'best_model'} "
        f"(mIoU {state.best_mean_iou:.4f})"
    )
    return 0


def train_augmentation(args: argparse.Namespace, ignore_index: int) -> TrainAugmentation:
    return TrainAugmentation(
        tuple(args.crop_size),
        args.base_size,
        tuple(args.scale_range),
        ignore_index=ignore_index,
        rare_class_probability=args.rare_class_probability,
        color_jitter=args.color_jitter,
    )


def learning_rate_scheduler(
    args: argparse.Namespace, optimizer: torch.optim.Optimizer, max_train_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The warmup (if any) and poly schedule over the run's `max_train_steps` optimizer steps."""
    if args.warmup_steps >= max_train_steps:
        raise UserInputError(
            f"--warmup_steps {args.warmup_steps} leaves no step for the learning-rate decay of this "
            f"{max_train_steps}-step run: lower it"
        )
    schedule = poly_schedule(max_train_steps, args.poly_power, args.warmup_steps, args.warmup_start_factor)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def log_training_step(
    accelerator: Accelerator,
    losses: LossMeter,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    progress: tqdm,
    step: int,
    plan: TrainingPlan,
    epoch: int,
) -> None:
    """Losses, learning rate(s) and speed since the last logging step, to the trackers, the progress bar and the log."""
    learning_rates = scheduler.get_last_lr()
    logs = {**losses.read(step), "learning_rate": learning_rates[0]}
    if len(learning_rates) > 1:
        logs["learning_rate_heads"] = learning_rates[1]
    accelerator.log({f"train/{k}": v for k, v in logs.items()}, step=step)
    progress.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{logs['learning_rate']:.5f}")
    logger.info(
        f"step {step}/{plan.max_train_steps} epoch {epoch} loss {logs['loss']:.4f} (main {logs['main_loss']:.4f}) "
        f"lr {logs['learning_rate']:.6f} {logs['images_per_second']:.1f} images/s"
    )


def start_or_resume(
    args: argparse.Namespace,
    accelerator: Accelerator,
    plan: TrainingPlan,
    architecture: dict,
    checkpoints_dir: Path,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> TrainerState:
    """The state of a new run, or the state restored from the checkpoint `--resume_from_checkpoint` names, after
    checking that the checkpoint was trained with this run's batch layout and network."""
    state = TrainerState(
        max_train_steps=plan.max_train_steps,
        per_device_train_batch_size=args.per_device_train_batch_size,
        num_processes=accelerator.num_processes,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        architecture=architecture,
        ema_decay=args.ema_decay,
    )
    if not args.resume_from_checkpoint:
        return state
    checkpoint = resolve_checkpoint(args.resume_from_checkpoint, checkpoints_dir)
    if checkpoint is None:
        logger.info("No checkpoint to resume from yet: starting a new run")
        return state
    state = load_checkpoint(accelerator, checkpoint, expected=state)
    logger.info(f"Resumed from {checkpoint} at step {state.global_step}, lr {scheduler.get_last_lr()[0]:.6g}")
    return state


def select_splits(splits, train_split: str, eval_split: str):
    """The training split and the evaluation split (None for `--eval_split none`)."""
    labelled = [name for name, split in splits.items() if "label" in split.column_names]
    for flag, name in (("--train_split", train_split), ("--eval_split", eval_split)):
        if name != "none" and name not in splits:
            raise UserInputError(f"{flag} {name}: no such split; available: {', '.join(splits)}")
        if name != "none" and name not in labelled:
            raise UserInputError(f"{flag} {name} has no labels; labelled splits: {', '.join(labelled)}")
    return splits[train_split], None if eval_split == "none" else splits[eval_split]


def build_model(args: argparse.Namespace, dataset: SelectedDataset, train_split) -> DDRNetForSemanticSegmentation:
    """A new network of `--variant`, or a saved one, for the dataset's classes; a saved model trained on other
    classes keeps its backbone and starts its heads afresh when `--ignore_mismatched_sizes` allows it.

    The loss settings are part of the config, so they are passed when the model is built.
    """
    label_space = dataset.label_space
    settings = {
        "id2label": label_space.id2label,
        "label2id": {name: index for index, name in label_space.id2label.items()},
        "semantic_loss_ignore_index": label_space.ignore_index,
        "class_weights": resolve_class_weights(args.class_weights, dataset, train_split),
        "use_ohem": not args.no_ohem,
    }
    if args.ohem_min_kept is not None:
        settings["ohem_min_kept"] = args.ohem_min_kept
    if not args.model_name_or_path:
        return DDRNetForSemanticSegmentation(DDRNetConfig.from_variant(args.variant or "ddrnet-23-slim", **settings))
    path = check_model_folder(args.model_name_or_path)
    stored = DDRNetConfig.from_pretrained(path)
    if stored.num_labels != label_space.num_labels and not args.ignore_mismatched_sizes:
        raise UserInputError(
            f"--model_name_or_path {path} predicts {stored.num_labels} classes but {dataset.name} has "
            f"{label_space.num_labels}; pass --ignore_mismatched_sizes to start the heads afresh."
        )
    model, info = DDRNetForSemanticSegmentation.from_pretrained(
        path, ignore_mismatched_sizes=args.ignore_mismatched_sizes, output_loading_info=True, **settings
    )
    fresh = [key[0] if isinstance(key, tuple) else key for key in info["mismatched_keys"]] + list(info["missing_keys"])
    if fresh:
        modules = sorted({key.rsplit(".", 1)[0] for key in fresh})
        kept = len(model.state_dict()) - len(fresh)
        logger.info(f"Started afresh for {label_space.num_labels} classes: {', '.join(modules)}; {kept} tensors kept")
    return model


def resolve_class_weights(choice: str | None, dataset: SelectedDataset, train_split) -> list[float] | None:
    """`--class_weights`: the named set, `auto` from the training labels, or none (the default depends on the data)."""
    choice = choice or ("cityscapes" if dataset.is_cityscapes else "none")
    if choice == "none":
        return None
    if choice == "auto":
        weights = weights_from_counts(count_label_pixels(train_split, dataset.label_space.num_labels))
        logger.info(f"Class weights from the training labels ({CLASS_WEIGHTS_FORMULA}): {weights}")
        return weights
    if not dataset.is_cityscapes:
        raise UserInputError(
            f"--class_weights {choice} weighs the Cityscapes classes, and {dataset.name} has other classes: "
            "use auto or none"
        )
    return list(NAMED_CLASS_WEIGHTS[choice])


def architecture_of(config: DDRNetConfig) -> dict:
    """The configuration fields that decide the shapes of the weights."""
    return {name: getattr(config, name) for name in (*VARIANTS["ddrnet-23-slim"], "num_labels", "use_auxiliary_head")}


def training_record(args: argparse.Namespace, effective_batch: int, dataset: SelectedDataset, config) -> dict:
    """The hyperparameters a model card reports, with the resolved class weights and how they were made."""
    keys = (
        "variant", "model_name_or_path", "learning_rate", "momentum", "weight_decay", "poly_power",
        "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs", "max_train_steps",
        "crop_size", "base_size", "scale_range", "no_ohem", "seed", "mixed_precision", "train_split",
        "ema_decay", "warmup_steps", "head_lr_multiplier", "rare_class_probability", "color_jitter",
    )  # fmt: skip
    record = {"recipe": args.config, **{key: getattr(args, key) for key in keys}}
    record.update(dataset=dataset.name, num_labels=config.num_labels, effective_batch_size=effective_batch)
    record["class_weights"] = args.class_weights or ("cityscapes" if dataset.is_cityscapes else "none")
    if record["class_weights"] == "auto":
        record.update(class_weights_formula=CLASS_WEIGHTS_FORMULA, class_weight_values=config.class_weights)
    return record


if __name__ == "__main__":
    run_script(main)
