"""Scoring a model on a split: a confusion matrix per process, summed; the offline `mean_iou` evaluate module
(a folder, for `evaluate.load`); the per-class table."""

from .report import format_table
from .scoring import EvaluationResult, confusion_matrix, evaluate_split

__all__ = ["EvaluationResult", "confusion_matrix", "evaluate_split", "format_table"]
