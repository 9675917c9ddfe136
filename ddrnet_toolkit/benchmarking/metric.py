"""Speed of scoring predictions: the Hub metric's three histograms against one confusion-matrix bincount."""

from __future__ import annotations

import numpy as np
import torch

from ..evaluation.mean_iou.mean_iou import confusion_matrix
from ..evaluation.scoring import confusion_matrix as device_confusion_matrix
from .timing import Measurement, time_callable


def measure_metric(num_images: int = 4, height: int = 1024, width: int = 2048, min_time: float = 1.0):
    """Images per second of scoring one prediction: the Hub's three histograms vs one confusion-matrix bincount."""
    rng = np.random.default_rng(0)
    predictions = rng.integers(0, 19, (num_images, height, width), dtype=np.uint8)
    labels = rng.integers(0, 20, (num_images, height, width), dtype=np.uint8)
    labels[labels == 19] = 255

    def histograms():
        for prediction, label in zip(predictions, labels, strict=True):
            mask = label != 255
            p, t = prediction[mask], label[mask]
            bins = {"bins": 19, "range": (0, 18)}
            np.histogram(p[p == t], **bins), np.histogram(p, **bins), np.histogram(t, **bins)

    def bincount():
        for prediction, label in zip(predictions, labels, strict=True):
            confusion_matrix(prediction, label, 19, 255)

    torch_predictions, torch_labels = torch.from_numpy(predictions), torch.from_numpy(labels)

    def device_bincount():
        for prediction, label in zip(torch_predictions, torch_labels, strict=True):
            device_confusion_matrix(prediction, label, 19, 255)

    rows = []
    cpu = torch.device("cpu")
    for name, fn in (("hub histograms", histograms), ("numpy bincount", bincount), ("torch bincount", device_bincount)):
        seconds = time_callable(fn, cpu, warmup=1, min_time=min_time) / num_images
        rows.append(Measurement("metric", "-", name, "cpu", f"{height}x{width}", seconds, 1 / seconds))
    return rows
