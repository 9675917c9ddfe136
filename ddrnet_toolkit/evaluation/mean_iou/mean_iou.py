"""Mean Intersection-over-Union, as the Hub's `mean_iou` metric, computed through a confusion matrix.

`evaluate.load(ddrnet_toolkit.MEAN_IOU_METRIC_PATH)` gives the same arguments (num_labels, ignore_index,
nan_to_num, label_map, reduce_labels) and the same outputs (mean_iou, mean_accuracy, overall_accuracy, per_category_iou,
per_category_accuracy) as the Hub's module, which builds three histograms per image. Here each image adds one
`bincount` into a `(num_labels + 1)^2` confusion matrix: the extra row and column collect values outside
`[0, num_labels)`, which the Hub's histograms drop from one side only. The functions below are also imported by
the training and evaluation scripts, which accumulate the matrix on the device and never gather predictions.
"""

from __future__ import annotations

import warnings

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """Mean IoU: per class, |prediction ∩ reference| / |prediction ∪ reference| over all images, averaged
over classes; plus per-class and overall pixel accuracy. Pixels whose reference equals `ignore_index` are skipped."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[np.ndarray]`): predicted segmentation maps, each of shape (height, width).
    references (`list[np.ndarray]`): ground-truth segmentation maps, each of shape (height, width).
    num_labels (`int`): number of classes.
    ignore_index (`int`): reference value to skip (e.g. 255).
    nan_to_num (`int`, *optional*): replace NaN (classes absent from predictions and references) by this value.
    label_map (`dict[int, int]`, *optional*): old id -> new id, applied to the references first.
    reduce_labels (`bool`, *optional*, defaults to `False`): map 0 to 255 and subtract 1 from the other labels.
Returns:
    `dict` with `mean_iou`, `mean_accuracy`, `overall_accuracy` (floats) and `per_category_iou`,
    `per_category_accuracy` (arrays of shape (num_labels,)).
Example:
    >>> import numpy as np, evaluate, ddrnet_toolkit
    >>> metric = evaluate.load(ddrnet_toolkit.MEAN_IOU_METRIC_PATH)
    >>> metric.compute(predictions=[np.array([[0, 1]])], references=[np.array([[0, 0]])], num_labels=2,
    ...                ignore_index=255)["mean_iou"]
    0.25
"""

_CITATION = """@software{MMSegmentation_Contributors_OpenMMLab_Semantic_Segmentation_2020,
  author = {{MMSegmentation Contributors}},
  title = {{OpenMMLab Semantic Segmentation Toolbox and Benchmark}},
  url = {https://github.com/open-mmlab/mmsegmentation},
  year = {2020}
}"""


def prepare_reference(reference: np.ndarray, label_map: dict[int, int] | None, reduce_labels: bool) -> np.ndarray:
    reference = np.array(reference)
    if label_map:
        original = reference.copy()
        for old_id, new_id in label_map.items():
            reference[original == old_id] = new_id
    if reduce_labels:
        reference[reference == 0] = 255
        reference = reference - 1
        reference[reference == 254] = 255
    return reference


def confusion_matrix(prediction: np.ndarray, reference: np.ndarray, num_labels: int, ignore_index: int) -> np.ndarray:
    """`(num_labels + 1, num_labels + 1)` counts, rows = reference, columns = prediction; index `num_labels`
    collects values outside `[0, num_labels)`. Pixels whose reference is `ignore_index` are skipped."""
    prediction = np.asarray(prediction).astype(np.int64).ravel()
    reference = np.asarray(reference).astype(np.int64).ravel()
    keep = reference != ignore_index
    prediction, reference = prediction[keep], reference[keep]
    prediction = np.where((prediction >= 0) & (prediction < num_labels), prediction, num_labels)
    reference = np.where((reference >= 0) & (reference < num_labels), reference, num_labels)
    size = num_labels + 1
    return np.bincount(reference * size + prediction, minlength=size * size).reshape(size, size)


def metrics_from_confusion_matrix(confusion: np.ndarray, nan_to_num: int | None = None) -> dict:
    """The Hub metric's outputs from a `(num_labels + 1, num_labels + 1)` matrix of `confusion_matrix`."""
    confusion = np.asarray(confusion, dtype=np.float64)
    num_labels = confusion.shape[0] - 1
    intersection = np.diag(confusion)[:num_labels]
    area_reference = confusion[:num_labels].sum(axis=1)
    area_prediction = confusion[:, :num_labels].sum(axis=0)
    union = area_prediction + area_reference - intersection
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # classes absent from both sides are NaN, as on the Hub
        iou = intersection / union
        accuracy = intersection / area_reference
        metrics = {
            "mean_iou": np.nanmean(iou),
            "mean_accuracy": np.nanmean(accuracy),
            "overall_accuracy": intersection.sum() / area_reference.sum(),
            "per_category_iou": iou,
            "per_category_accuracy": accuracy,
        }
    if nan_to_num is not None:
        metrics = {name: np.nan_to_num(value, nan=nan_to_num) for name, value in metrics.items()}
    return metrics


class MeanIoU(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Image(), "references": datasets.Image()}),
            reference_urls=["https://huggingface.co/spaces/evaluate-metric/mean_iou"],
        )

    def _compute(
        self,
        predictions,
        references,
        num_labels: int,
        ignore_index: int,
        nan_to_num: int | None = None,
        label_map: dict[int, int] | None = None,
        reduce_labels: bool = False,
    ) -> dict:
        total = np.zeros((num_labels + 1, num_labels + 1), dtype=np.int64)
        for prediction, reference in zip(predictions, references, strict=True):
            reference = prepare_reference(reference, label_map, reduce_labels)
            total += confusion_matrix(prediction, reference, num_labels, ignore_index)
        return metrics_from_confusion_matrix(total, nan_to_num)
