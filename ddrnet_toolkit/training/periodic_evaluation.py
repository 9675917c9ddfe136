"""Evaluating during training and saving what the run publishes: the latest model as `last_model`, the best by
validation mIoU as `best_model`, each with its results, the training record and the dataset's classes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets
from accelerate import Accelerator
from accelerate.logging import get_logger

from dataset_builders.label_space import LabelSpace
from modeling_ddrnet import DDRNetImageProcessor

from ..evaluation.scoring import evaluate_split
from ..model_folder import EVAL_RESULTS_FILE, LABELS_FILE, TRAINING_ARGS_FILE, class_names, save_pretrained_atomically
from .accelerator import share_main_process_buffers
from .checkpointing import TrainerState
from .guards import check_weights_finite
from .tracking import log_prediction_images

logger = get_logger(__name__)


@dataclass
class RunModels:
    """Saves a run's model folders (main process only), atomically, never a model with non-finite weights; the
    image processor saved with a model follows its `align_corners`."""

    output_dir: Path
    training_record: dict
    label_space: LabelSpace

    def save(self, model, step: int, results: dict | None = None, best: bool = False) -> None:
        check_weights_finite(model, step)
        image_processor = DDRNetImageProcessor(align_corners=model.config.align_corners)
        extra = {TRAINING_ARGS_FILE: self.training_record, LABELS_FILE: self.label_space.to_labels_file()}
        if results is not None:
            extra = {EVAL_RESULTS_FILE: results, **extra}
        save_pretrained_atomically(model, image_processor, self.output_dir / "last_model", extra)
        if best:
            save_pretrained_atomically(model, image_processor, self.output_dir / "best_model", extra)


@dataclass
class PeriodicEvaluation:
    """Evaluate during training: log the scores and sample pictures, save the latest model and, when the score
    improves, the best one."""

    split: datasets.Dataset
    split_name: str
    dataset_name: str
    models: RunModels
    batch_size: int = 1
    num_workers: int = 2
    num_images_to_log: int = 4
    channels_last: bool = False

    def __call__(self, model, accelerator: Accelerator, state: TrainerState) -> None:
        share_main_process_buffers(accelerator, model)
        result = evaluate_split(
            model,
            self.split,
            accelerator,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            num_samples_to_keep=self.num_images_to_log,
            channels_last=self.channels_last,
        )
        results = {**result.to_json(class_names(model.config)), "step": state.global_step, "split": self.split_name}
        if result.nonfinite_problem() is not None:
            logger.warning(f"step {state.global_step}: {result.nonfinite_problem()}")
            results["nonfinite_images"] = result.nonfinite_images
        results["dataset"] = self.dataset_name
        metrics = {f"eval/{k}": results[k] for k in ("mean_iou", "mean_accuracy", "overall_accuracy")}
        metrics.update({f"eval_iou/{name}": value for name, value in results["per_category_iou"].items()})
        accelerator.log({k: v for k, v in metrics.items() if v is not None}, step=state.global_step)
        log_prediction_images(accelerator, result.samples, state.global_step, self.models.label_space.palette)
        miou = results["mean_iou"] or 0.0
        logger.info(
            f"step {state.global_step}: {self.split_name} mIoU {miou:.4f}, mean accuracy "
            f"{results['mean_accuracy'] or 0:.4f}, overall accuracy {results['overall_accuracy'] or 0:.4f}"
        )
        if accelerator.is_main_process:
            self.models.save(model, state.global_step, results, best=miou > state.best_mean_iou)
        state.best_mean_iou = max(state.best_mean_iou, miou)
