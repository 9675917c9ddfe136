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
import math
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration, set_seed
from tqdm.auto import tqdm

from modeling_ddrnet import VARIANTS
from modeling_ddrnet.configuration_ddrnet import LOSS_TYPES, NAMED_CLASS_WEIGHTS

from ..data.augmentation import TrainAugmentation
from ..data.loaders import default_num_workers, train_dataloader
from ..devices import pins_memory
from ..training.accelerator import (
    check_distributed_setup,
    check_replicas_identical,
    end_run,
    make_accelerator,
    prepare_model_layout,
    remaining_batches,
)
from ..training.checkpointing import TrainerState, save_checkpoint, start_or_resume
from ..training.distillation import DEFAULT_TEMPERATURE, DEFAULT_WEIGHTS, DISTILLATION_MODES, Teacher, load_teacher
from ..training.guards import NonFiniteGuard
from ..training.model_setup import architecture_of, build_model, resolve_class_weights, training_record
from ..training.optimization import poly_scheduler, sgd_with_momentum_buffers
from ..training.periodic_evaluation import PeriodicEvaluation, RunModels
from ..training.plan import TrainingPlan
from ..training.preemption import Preemption
from ..training.recipes import add_config_argument, parse_args_with_config, resolved_recipe, write_recipe
from ..training.run_folder import TRAIN_CONFIG, claim_run_folder
from ..training.step import train_on_batch
from ..training.tracking import LossMeter, log_training_step
from ..training.weight_averaging import WeightAverage
from .arguments import (
    add_dataset_arguments,
    add_distributed_arguments,
    check_dataset_arguments,
    dataset_from_arguments,
    seed,
)
from .runner import entry_point

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
    model.add_argument(
        "--loss",
        choices=LOSS_TYPES,
        default=None,
        help="The segmentation loss of both heads (the auxiliary one weighted 0.4): ohem (the paper's, default), "
        "cross_entropy, or dice_ce_edge (cross entropy + cross entropy on label boundaries + Dice, super-gradients').",
    )
    model.add_argument("--no_ohem", action="store_true", help="Same as --loss cross_entropy (older recipes).")
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
    data.add_argument("--num_workers", type=int, default=default_num_workers(), help="DataLoader workers.")

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
    optim.add_argument("--seed", type=seed, default=304)

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

    teacher = parser.add_argument_group("knowledge distillation (off unless a teacher is given)")
    teacher.add_argument(
        "--teacher_model_name_or_path",
        default=None,
        help="A trained DDRNet folder (any variant, the same classes) whose scores the student also learns to match; "
        "it runs frozen beside the student and is not saved.",
    )
    teacher.add_argument(
        "--distillation",
        choices=DISTILLATION_MODES,
        default=None,
        help="channel: each class map's spatial distribution (CWD, super-gradients'; default); pixel: each pixel's "
        "class distribution.",
    )
    teacher.add_argument(
        "--distillation_weight",
        type=float,
        default=None,
        help=f"Weight of the distillation term in the loss (default: {DEFAULT_WEIGHTS['channel']:g} channel, "
        f"{DEFAULT_WEIGHTS['pixel']:g} pixel).",
    )
    teacher.add_argument(
        "--distillation_temperature",
        type=float,
        default=None,
        help="Softening temperature T of both distributions; the term is scaled by T^2 "
        f"(default {DEFAULT_TEMPERATURE:g}).",
    )

    speed = parser.add_argument_group("speed")
    speed.add_argument("--channels_last", action="store_true", help="NHWC memory format (faster with AMP on GPUs).")
    speed.add_argument("--compile", action="store_true", help="torch.compile the model.")
    speed.add_argument(
        "--compile_backend",
        default="inductor",
        help="torch.compile backend (default inductor; eager and aot_eager trace the model without generating code, "
        "which starts much faster on a CPU).",
    )
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
    add_distributed_arguments(run)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parse_args_with_config(parser, argv)
    check_dataset_arguments(args, parser)
    check_training_arguments(args, parser)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    output_dir, checkpoints_dir = Path(args.output_dir), Path(args.output_dir) / "checkpoints"
    accelerator = accelerator_from_arguments(args, output_dir)
    if accelerator.is_main_process:  # one process claims the folder for the run; the others wait for it
        claim_run_folder(output_dir, args.overwrite_output_dir, resuming=args.resume_from_checkpoint is not None)
    accelerator.wait_for_everyone()
    check_distributed_setup(accelerator, args.per_device_train_batch_size)
    set_seed(args.seed)

    # Data: prepared once by the main process, then read from the cache by the others.
    with accelerator.main_process_first():
        dataset = dataset_from_arguments(args)
    train_split, eval_split = splits_from_arguments(args, dataset)
    augmentation = train_augmentation(args, dataset.label_space.ignore_index)
    pin_memory = pins_memory(accelerator.device)
    batch_size, accumulation = args.per_device_train_batch_size, args.gradient_accumulation_steps
    train_loader = train_dataloader(train_split, augmentation, batch_size, args.num_workers, args.seed, pin_memory)

    # Model (and the teacher, frozen and never prepared: it is not trained, synchronized or saved), optimizer and
    # schedule.
    model = prepare_model_layout(model_from_arguments(args, dataset, train_split), accelerator, args.channels_last)
    align_corners = model.config.align_corners
    teacher = teacher_from_arguments(args, dataset, accelerator)
    optimizer = sgd_with_momentum_buffers(
        model, args.learning_rate, args.momentum, args.weight_decay, args.head_lr_multiplier
    )
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    if args.compile:
        model = torch.compile(model, backend=args.compile_backend)
    plan = training_plan(args, len(train_loader))
    scheduler = poly_scheduler(
        optimizer, plan.max_train_steps, args.poly_power, args.warmup_steps, args.warmup_start_factor
    )
    accelerator.register_for_checkpointing(scheduler)
    unwrapped = accelerator.unwrap_model(model, keep_torch_compile=False)  # evaluated and saved uncompiled
    average = WeightAverage(unwrapped, args.ema_decay) if args.ema_decay > 0 else None
    if average is not None:
        accelerator.register_for_checkpointing(average)
    published = average.model if average is not None else unwrapped  # what is evaluated and saved
    effective_batch = batch_size * accelerator.num_processes * accumulation
    describe_run(len(train_split), plan, args, accelerator, effective_batch)

    # Resume (a finished run stays as it is), then record the run.
    state = start_or_resume(
        new_trainer_state(args, accelerator, plan, architecture_of(unwrapped.config)),
        accelerator,
        args.resume_from_checkpoint,
        checkpoints_dir,
        scheduler,
    )
    record = training_record(vars(args), dataset, unwrapped.config, effective_batch)
    models = RunModels(output_dir, record, dataset.label_space)
    evaluation = None if eval_split is None else periodic_evaluation(args, eval_split, dataset.name, models)
    already_finished = plan.is_finished(state.global_step)
    if already_finished:
        logger.info(f"The run in {output_dir} ended at step {state.global_step}: nothing to do")
    else:
        start_tracking(accelerator, args, output_dir, effective_batch)

    # Training loop.
    guard = NonFiniteGuard(accelerator, optimizer, args.max_nonfinite_steps, skipped_before=state.skipped_steps)
    losses = LossMeter(accelerator, effective_batch, state.global_step, distilling=teacher is not None)
    preemption = Preemption(accelerator)
    quiet = already_finished or not accelerator.is_local_main_process
    model.train()
    stopping = False
    first_epoch, done = plan.epoch_of(state.global_step), plan.batches_done_in_epoch(state.global_step, accumulation)
    last_epoch = first_epoch if already_finished else plan.num_epochs
    batches = remaining_batches(accelerator, train_loader, first_epoch, last_epoch, done)
    with tqdm(total=plan.max_train_steps, initial=state.global_step, desc="training", disable=quiet) as progress:
        for epoch, batch in batches:
            outputs, distillation = train_on_batch(
                accelerator, model, optimizer, guard, batch, args.channels_last, teacher, align_corners
            )
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            if average is not None:
                average.update(unwrapped)
            state.global_step += 1
            progress.update(1)
            losses.add(outputs, distillation)

            step = state.global_step
            if plan.is_logging_step(step):  # the only host synchronization of the loop
                state.skipped_steps = guard.skipped_steps()
                log_training_step(
                    accelerator, losses, scheduler, progress, step, plan.max_train_steps, epoch, state.skipped_steps
                )
                guard.raise_if_diverged(step)
            if evaluation and plan.is_eval_step(step):
                evaluation(published, accelerator, state)
            stopping = preemption.should_stop(at_sync_point=plan.is_logging_step(step))
            if plan.is_checkpoint_step(step) or stopping:
                guard.raise_if_diverged(step)
                state.skipped_steps = guard.skipped_steps()
                save_checkpoint(accelerator, checkpoints_dir, state, args.checkpoints_total_limit)
            if stopping or plan.is_finished(step):
                break

    # Save.
    if stopping:
        logger.info(f"Received {preemption.describe()}: checkpoint saved at step {state.global_step}")
    elif not already_finished:
        if evaluation is None and accelerator.is_main_process:
            models.save(published, state.global_step)
        check_replicas_identical(accelerator, unwrapped)
        logger.info(final_message(output_dir, state, evaluated=evaluation is not None))
    end_run(accelerator)
    return 0


def accelerator_from_arguments(args: argparse.Namespace, output_dir: Path) -> Accelerator:
    """The run's accelerator (its trackers log under `output_dir/logs`), and the log it writes to."""
    accelerator = make_accelerator(
        timeout_seconds=args.ddp_timeout,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", level=logging.INFO)
    logger.info(accelerator.state, main_process_only=True)
    return accelerator


def splits_from_arguments(args: argparse.Namespace, dataset) -> tuple:
    """The training split and the evaluation split (None for `--eval_split none`)."""
    train_split = dataset.split(args.train_split, labelled=True, what="--train_split")
    if args.eval_split == "none":
        return train_split, None
    return train_split, dataset.split(args.eval_split, labelled=True, what="--eval_split")


def model_from_arguments(args: argparse.Namespace, dataset, train_split):
    return build_model(
        dataset,
        class_weights=resolve_class_weights(args.class_weights, dataset, train_split),
        loss_type=args.loss,
        ohem_min_kept=args.ohem_min_kept,
        variant=args.variant,
        model_name_or_path=args.model_name_or_path,
        ignore_mismatched_sizes=args.ignore_mismatched_sizes,
    )


def teacher_from_arguments(args: argparse.Namespace, dataset, accelerator: Accelerator) -> Teacher | None:
    """The teacher of `--teacher_model_name_or_path` on this process's device, under the run's autocast."""
    if args.teacher_model_name_or_path is None:
        return None
    teacher = load_teacher(
        args.teacher_model_name_or_path,
        list(dataset.label_space.names),
        dataset.label_space.ignore_index,
        mode=args.distillation,
        weight=args.distillation_weight,
        temperature=args.distillation_temperature,
        device=accelerator.device,
        channels_last=args.channels_last,
        autocast=accelerator.autocast,
    )
    logger.info(f"Teacher: {teacher.describe()}", main_process_only=True)
    return teacher


def final_message(output_dir: Path, state: TrainerState, evaluated: bool) -> str:
    if not evaluated:
        return f"Done: the model is in {output_dir / 'last_model'} (not evaluated: --eval_split none)"
    best = f"best in {output_dir / 'best_model'} (mIoU {state.best_mean_iou:.4f})"
    return f"Done: last model in {output_dir / 'last_model'}, {best}"


def train_augmentation(args: argparse.Namespace, ignore_index: int) -> TrainAugmentation:
    return TrainAugmentation(
        tuple(args.crop_size),
        args.base_size,
        tuple(args.scale_range),
        ignore_index=ignore_index,
        rare_class_probability=args.rare_class_probability,
        color_jitter=args.color_jitter,
    )


def training_plan(args: argparse.Namespace, batches_per_epoch: int) -> TrainingPlan:
    return TrainingPlan.for_run(
        batches_per_epoch=batches_per_epoch,
        batch_size=args.per_device_train_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        num_train_epochs=args.num_train_epochs,
        max_train_steps=args.max_train_steps,
        eval_steps=args.eval_steps,
        checkpointing_steps=args.checkpointing_steps,
        logging_steps=args.logging_steps,
    )


def new_trainer_state(
    args: argparse.Namespace, accelerator: Accelerator, plan: TrainingPlan, architecture: dict
) -> TrainerState:
    return TrainerState(
        max_train_steps=plan.max_train_steps,
        per_device_train_batch_size=args.per_device_train_batch_size,
        num_processes=accelerator.num_processes,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        architecture=architecture,
        ema_decay=args.ema_decay,
    )


def periodic_evaluation(args: argparse.Namespace, split, dataset_name: str, models: RunModels) -> PeriodicEvaluation:
    return PeriodicEvaluation(
        split=split,
        split_name=args.eval_split,
        dataset_name=dataset_name,
        models=models,
        batch_size=args.per_device_eval_batch_size,
        num_workers=min(args.num_workers, 2),
        num_images_to_log=args.num_eval_images_to_log,
        channels_last=args.channels_last,
    )


def describe_run(
    num_images: int, plan: TrainingPlan, args: argparse.Namespace, accelerator: Accelerator, effective_batch: int
) -> None:
    logger.info(
        f"{num_images} training images, {plan.steps_per_epoch} steps per epoch, {plan.max_train_steps} steps "
        f"({plan.num_epochs} epochs); effective batch size {effective_batch} = {args.per_device_train_batch_size} "
        f"per device x {accelerator.num_processes} processes x {args.gradient_accumulation_steps} accumulation; "
        f"learning rate {args.learning_rate}; mixed precision {accelerator.mixed_precision}"
    )


def start_tracking(accelerator: Accelerator, args: argparse.Namespace, output_dir: Path, effective_batch: int) -> None:
    """Write the run's resolved options as a recipe, and start the trackers with them."""
    if accelerator.is_main_process:
        replay = f"accelerate launch scripts/train.py --config {output_dir / TRAIN_CONFIG} --output_dir NEW_FOLDER"
        comment = f"Every option of this run. Replay:\n{replay}"
        write_recipe(resolved_recipe(vars(args)), output_dir / TRAIN_CONFIG, comment)
    if args.report_to != "none":
        # TensorBoard's hyperparameter view takes numbers, strings and booleans only.
        hyperparameters = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in vars(args).items()}
        accelerator.init_trackers("ddrnet", config={**hyperparameters, "effective_batch_size": effective_batch})


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
    check_loss_arguments(args, parser)
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
    if args.compile_backend != "inductor":
        if not args.compile:
            parser.error(f"--compile_backend {args.compile_backend} applies with --compile only")
        backends = torch._dynamo.list_backends(exclude_tags=())
        if args.compile_backend not in backends:
            parser.error(f"--compile_backend must be one of {', '.join(backends)}, got {args.compile_backend}")


def check_loss_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Resolve `--loss` (and `--no_ohem`, its older spelling) and the distillation options, which apply with a
    teacher only, to their values."""
    if args.no_ohem and args.loss not in (None, "cross_entropy"):
        parser.error(f"--no_ohem means --loss cross_entropy, which contradicts --loss {args.loss}")
    args.loss = args.loss or ("cross_entropy" if args.no_ohem else "ohem")
    options = ("distillation", "distillation_weight", "distillation_temperature")
    if args.teacher_model_name_or_path is None:
        given = [f"--{name}" for name in options if getattr(args, name) is not None]
        if given:
            parser.error(f"{', '.join(given)} need(s) --teacher_model_name_or_path")
        return
    args.distillation = args.distillation or DISTILLATION_MODES[0]
    if args.distillation_weight is None:
        args.distillation_weight = DEFAULT_WEIGHTS[args.distillation]
    if args.distillation_temperature is None:
        args.distillation_temperature = DEFAULT_TEMPERATURE
    for name in ("distillation_weight", "distillation_temperature"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            parser.error(f"--{name} must be a positive number, got {value}")


cli = entry_point(main)


if __name__ == "__main__":
    cli()
