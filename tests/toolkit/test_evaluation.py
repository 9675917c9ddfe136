"""The local mean_iou module against the Hub's algorithm (three histograms per image), written out here."""

from __future__ import annotations

import evaluate
import numpy as np
import pytest
import torch

from ddrnet_toolkit import MEAN_IOU_METRIC_PATH
from ddrnet_toolkit.evaluation import confusion_matrix as torch_confusion_matrix
from ddrnet_toolkit.evaluation.mean_iou.mean_iou import confusion_matrix as numpy_confusion_matrix


def histogram_reference(
    predictions, references, num_labels, ignore_index, nan_to_num=None, label_map=None, reduce_labels=False
):
    intersect_total = np.zeros(num_labels)
    union_total = np.zeros(num_labels)
    label_total = np.zeros(num_labels)
    for prediction, reference in zip(predictions, references, strict=True):
        prediction, reference = np.array(prediction), np.array(reference)
        if label_map:
            original = reference.copy()
            for old, new in label_map.items():
                reference[original == old] = new
        if reduce_labels:
            reference[reference == 0] = 255
            reference = reference - 1
            reference[reference == 254] = 255
        mask = reference != ignore_index
        prediction, reference = prediction[mask], reference[mask]
        intersect = prediction[prediction == reference]
        bins = {"bins": num_labels, "range": (0, num_labels - 1)}
        area_intersect = np.histogram(intersect, **bins)[0]
        area_prediction = np.histogram(prediction, **bins)[0]
        area_reference = np.histogram(reference, **bins)[0]
        intersect_total += area_intersect
        union_total += area_prediction + area_reference - area_intersect
        label_total += area_reference
    with np.errstate(divide="ignore", invalid="ignore"):
        iou, accuracy = intersect_total / union_total, intersect_total / label_total
        result = {
            "mean_iou": np.nanmean(iou),
            "mean_accuracy": np.nanmean(accuracy),
            "overall_accuracy": intersect_total.sum() / label_total.sum(),
            "per_category_iou": iou,
            "per_category_accuracy": accuracy,
        }
    if nan_to_num is not None:
        result = {k: np.nan_to_num(v, nan=nan_to_num) for k, v in result.items()}
    return result


def random_maps(seed: int, count: int = 4, num_labels: int = 6):
    rng = np.random.default_rng(seed)
    predictions = [rng.integers(0, num_labels + 2, (20, 30)).astype(np.uint8) for _ in range(count)]
    references = [rng.integers(0, num_labels, (20, 30)).astype(np.uint8) for _ in range(count)]
    for reference in references:
        reference[:3] = 255
        reference[5, :4] = num_labels + 3  # outside the classes, but not ignored
    return predictions, references


@pytest.fixture(scope="module")
def metric():
    return evaluate.load(MEAN_IOU_METRIC_PATH)


@pytest.mark.parametrize(
    "options",
    [{}, {"nan_to_num": 0}, {"label_map": {1: 4, 4: 1}}, {"reduce_labels": True}, {"ignore_index": 0}],
)
def test_module_equals_the_hub_algorithm(metric, options):
    predictions, references = random_maps(sum(map(ord, str(options))))
    kwargs = {"num_labels": 6, "ignore_index": 255, **options}
    result = metric.compute(predictions=predictions, references=references, **kwargs)
    expected = histogram_reference(predictions, references, **kwargs)
    assert set(result) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(result[key], value, rtol=1e-12, equal_nan=True, err_msg=key)


def test_absent_classes_are_nan_and_the_example_holds(metric):
    result = metric.compute(
        predictions=[np.array([[0, 1]])], references=[np.array([[0, 0]])], num_labels=3, ignore_index=255
    )
    assert result["mean_iou"] == pytest.approx(0.25)
    assert np.isnan(result["per_category_iou"][2])


def test_torch_confusion_matrix_equals_numpy():
    predictions, references = random_maps(7)
    expected = sum(numpy_confusion_matrix(p, r, 6, 255) for p, r in zip(predictions, references, strict=True))
    actual = sum(
        torch_confusion_matrix(torch.from_numpy(p), torch.from_numpy(r), 6, 255)
        for p, r in zip(predictions, references, strict=True)
    )
    np.testing.assert_array_equal(actual.numpy(), expected)
