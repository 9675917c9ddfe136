"""Distributed evaluation: each process scores its own shard into a confusion matrix; the matrices are summed.

Predictions are never gathered, so memory does not grow with the dataset, and every sample is counted exactly
once whatever the number of processes (no padding of uneven shards).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from ..data.loaders import EvalDataset, PadToLargest
from ..data.normalization import normalize_on_device
from ..devices import pins_memory
from ..inference.engines import Engine
from ..inference.segmentation import InferenceOptions, predict_probabilities
from .mean_iou.mean_iou import metrics_from_confusion_matrix


def confusion_matrix(
    predictions: torch.Tensor, labels: torch.Tensor, num_labels: int, ignore_index: int
) -> torch.Tensor:
    """`(num_labels + 1)^2` counts (rows: label, columns: prediction) on the tensors' device, without a host sync.

    The layout is that of `mean_iou.mean_iou.confusion_matrix`: index `num_labels` collects values
    outside `[0, num_labels)`, and pixels labelled `ignore_index` fall into a bin that is dropped.
    """
    size = num_labels + 1
    labels = labels.long()
    predictions = predictions.long()
    predictions = torch.where((predictions >= 0) & (predictions < num_labels), predictions, num_labels)
    rows = torch.where((labels >= 0) & (labels < num_labels), labels, num_labels)
    bins = torch.where(labels == ignore_index, size * size, rows * size + predictions)
    counts = torch.bincount(bins.flatten(), minlength=size * size + 1)
    return counts[: size * size].reshape(size, size)


@dataclass
class EvaluationResult:
    confusion: np.ndarray
    metrics: dict
    # (image uint8 HWC, prediction HW, label HW) for the first few images of the main process.
    samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    # Images whose class probabilities held NaN or inf (their predictions, and so the scores, are wrong).
    nonfinite_images: int = 0

    def nonfinite_problem(self) -> str | None:
        """What is wrong with scores computed from non-finite outputs, or None when every output was finite."""
        if not self.nonfinite_images:
            return None
        return (
            f"{self.nonfinite_images} evaluated image(s) got NaN or infinite class probabilities, so the scores would "
            "be wrong: the model's activations overflow (under fp16 autocast, float16's 65504; in any precision when "
            "its BatchNorm statistics have not settled, a few steps into training); evaluate in fp32 or bf16, or a "
            "model trained longer"
        )

    def to_json(self, class_names: Sequence[str]) -> dict:
        """Plain-JSON results, per-class values keyed by class name (NaN becomes null)."""

        def number(value: float) -> float | None:
            return None if np.isnan(value) else float(value)

        return {
            "mean_iou": number(self.metrics["mean_iou"]),
            "mean_accuracy": number(self.metrics["mean_accuracy"]),
            "overall_accuracy": number(self.metrics["overall_accuracy"]),
            "per_category_iou": {
                name: number(v) for name, v in zip(class_names, self.metrics["per_category_iou"], strict=True)
            },
            "per_category_accuracy": {
                name: number(v) for name, v in zip(class_names, self.metrics["per_category_accuracy"], strict=True)
            },
        }


@torch.no_grad()
def evaluate_split(
    model: torch.nn.Module | Engine,
    split,
    accelerator: Accelerator,
    *,
    batch_size: int = 1,
    num_workers: int = 2,
    options: InferenceOptions | None = None,
    num_samples_to_keep: int = 0,
    channels_last: bool = False,
) -> EvaluationResult:
    """Score `model` on a labelled split, with the test-time augmentation of `options`, under the accelerator's
    autocast: a module (unwrapped, any mode: it is put in eval mode and restored) or an engine of
    `inference.engines`. Images whose outputs are not finite are counted (`EvaluationResult.nonfinite_images`)."""
    config = model.config
    options = asdict(options or InferenceOptions())
    num_labels, ignore_index = config.num_labels, config.semantic_loss_ignore_index
    shard = Subset(EvalDataset(split), range(accelerator.process_index, len(split), accelerator.num_processes))
    loader = DataLoader(
        shard,
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=pins_memory(accelerator.device),
        collate_fn=PadToLargest(ignore_index),
    )
    module = model if isinstance(model, torch.nn.Module) else None
    was_training = module is not None and module.training
    if module is not None:
        module.eval()
    confusion = torch.zeros((num_labels + 1, num_labels + 1), dtype=torch.long, device=accelerator.device)
    nonfinite = torch.zeros((), dtype=torch.long, device=accelerator.device)
    samples = []
    progress = tqdm(loader, desc="evaluating", disable=not accelerator.is_local_main_process, leave=False)
    for batch in progress:
        on_device = {key: value.to(accelerator.device, non_blocking=True) for key, value in batch.items()}
        pixel_values, labels = normalize_on_device(on_device, channels_last)
        with accelerator.autocast():
            probabilities = predict_probabilities(model, pixel_values, **options, align_corners=config.align_corners)
        predictions = probabilities.argmax(dim=1)
        confusion += confusion_matrix(predictions, labels, num_labels, ignore_index)
        nonfinite += (~torch.isfinite(probabilities).flatten(1).all(dim=1)).sum()
        if accelerator.is_main_process and len(samples) < num_samples_to_keep:
            for image, prediction, label in zip(batch["pixel_values"], predictions, labels, strict=True):
                if len(samples) < num_samples_to_keep:
                    samples.append((image.numpy(), prediction.byte().cpu().numpy(), label.byte().cpu().numpy()))
    if module is not None:
        module.train(was_training)
    confusion = accelerator.reduce(confusion, reduction="sum").cpu().numpy()
    nonfinite = int(accelerator.reduce(nonfinite, reduction="sum").item())
    return EvaluationResult(confusion, metrics_from_confusion_matrix(confusion), samples, nonfinite)
