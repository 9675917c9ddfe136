"""Evaluation and prediction as the commands run them, timed on one device: the test-time protocols of eval.py
(single scale, multi-scale + flip, sliding window) in fp32 and under autocast, prediction of full images, the
predict command itself and the demo app that a push writes."""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch
from accelerate import Accelerator

from ..evaluation.scoring import evaluate_split
from ..inference.segmentation import InferenceOptions, predict_classes
from .timing import autocast, synchronize


@dataclass(frozen=True)
class Timed:
    seconds: float  # per image
    mean_iou: float | None = None
    nonfinite_images: int = 0
    labels: np.ndarray | None = None  # predicted class ids, for prediction


def timed_evaluation(
    model: torch.nn.Module,
    split: datasets.Dataset,
    accelerator: Accelerator,
    options: InferenceOptions,
    dtype: torch.dtype | None,
) -> Timed:
    """eval.py's scoring of `split` with `options`, under autocast to `dtype` when given; seconds per image after
    a warm-up on the first image (cuDNN autotuning of each scale's shapes), images decoded in this process (no
    loader workers to start, so that the time is the protocol's)."""
    device = accelerator.device
    with autocast(device, dtype is not None, dtype):
        evaluate_split(model, split.select([0]), accelerator, num_workers=0, options=options)
        synchronize(device)
        start = time.perf_counter()
        result = evaluate_split(model, split, accelerator, num_workers=0, options=options)
        synchronize(device)
    seconds = (time.perf_counter() - start) / len(split)
    return Timed(seconds, float(result.metrics["mean_iou"]), result.nonfinite_images)


def timed_prediction(
    model: torch.nn.Module, images: np.ndarray, device: torch.device, dtype: torch.dtype | None
) -> Timed:
    """`predict_classes` of each `(H, W, 3)` uint8 image of `images` in turn (host to device and back included),
    under autocast to `dtype` when given; seconds per image after one warm-up image."""
    with autocast(device, dtype is not None, dtype):
        predict_classes(model, images[:1], device)
        start = time.perf_counter()
        labels = np.concatenate([predict_classes(model, images[i : i + 1], device) for i in range(len(images))])
    return Timed((time.perf_counter() - start) / len(images), labels=labels)


def run_predict_command(model_dir: Path, inputs: list[Path], output_dir: Path, device: torch.device) -> float:
    """`ddrnet-predict` (its `main`, in this process) on `inputs` with colour masks and overlays, on `device`;
    returns its seconds."""
    from ..commands import predict

    start = time.perf_counter()
    arguments = ["--model_name_or_path", str(model_dir), "--inputs", *map(str, inputs), "--output_dir", str(output_dir)]
    predict.main([*arguments, "--formats", "color", "overlay", "--device", str(device)])
    return time.perf_counter() - start


@dataclass(frozen=True)
class AppResult:
    device: str  # where the app's model runs
    seconds: float  # per image, after a first (loading) call
    labels: np.ndarray  # class ids of each image


def run_demo_app(model_dir: Path, hub_dir: Path, images: np.ndarray) -> AppResult:
    """Publish `model_dir` into `hub_dir` as push_to_hub.py does, import the repo's app.py (no server) and segment
    `images` through it."""
    from ..hub.publish import publish

    repo, _ = publish(model_dir, hub_dir, "gpu-check/app")
    spec = importlib.util.spec_from_file_location("gpu_check_space_app", repo / "app.py")
    app = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = app  # as an import would: its dataclass looks its module up while being defined
    try:
        spec.loader.exec_module(app)
        app.segment(np.ascontiguousarray(images[0][:, ::-1]))  # loads the model (the app keeps the last result)
        start = time.perf_counter()
        labels = np.stack([app.predict_class_ids(np.ascontiguousarray(image)) for image in images])
        seconds = (time.perf_counter() - start) / len(images)
        return AppResult(app.segmenter().device.type, seconds, labels)
    finally:
        sys.modules.pop(spec.name, None)
