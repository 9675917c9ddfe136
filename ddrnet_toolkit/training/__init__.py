"""The pieces of a training run: accelerator, model, optimizer and schedule, the plan of steps, one batch's step,
guards, tracking, periodic evaluation, checkpoints, recipes, the average of the weights."""

from .checkpointing import TrainerState, load_checkpoint, save_checkpoint, start_or_resume
from .model_setup import build_model, training_record
from .optimization import poly_schedule, poly_scheduler, sgd_with_momentum_buffers
from .periodic_evaluation import PeriodicEvaluation, RunModels
from .plan import TrainingPlan
from .recipes import parse_args_with_config, read_recipe
from .step import train_on_batch
from .weight_averaging import WeightAverage

__all__ = [
    "PeriodicEvaluation",
    "RunModels",
    "TrainerState",
    "TrainingPlan",
    "WeightAverage",
    "build_model",
    "load_checkpoint",
    "parse_args_with_config",
    "poly_schedule",
    "poly_scheduler",
    "read_recipe",
    "save_checkpoint",
    "sgd_with_momentum_buffers",
    "start_or_resume",
    "train_on_batch",
    "training_record",
]
