"""Full-resolution inference: multi-scale, horizontal flip and sliding-window evaluation."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import normalize


def _logits(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    outputs = model(pixel_values=pixel_values)
    return outputs.logits if hasattr(outputs, "logits") else outputs


def sliding_window_logits(
    model: nn.Module, pixel_values: torch.Tensor, window: tuple[int, int], stride: tuple[int, int]
) -> torch.Tensor:
    """Logits at the input resolution, averaged over windows of `window` size placed every `stride` pixels.

    The input is zero-padded (bottom/right) to at least one window. `(B, C, H, W)` -> `(B, num_labels, H, W)`.
    """
    height, width = pixel_values.shape[-2:]
    window_h, window_w = window
    stride_h, stride_w = stride
    padded_h, padded_w = max(height, window_h), max(width, window_w)
    padded = F.pad(pixel_values, (0, padded_w - width, 0, padded_h - height))
    rows = list(range(0, max(padded_h - window_h, 0) + 1, stride_h))
    cols = list(range(0, max(padded_w - window_w, 0) + 1, stride_w))
    # Cover the far edges even when the stride does not divide the padded size.
    if rows[-1] + window_h < padded_h:
        rows.append(padded_h - window_h)
    if cols[-1] + window_w < padded_w:
        cols.append(padded_w - window_w)
    total = None
    counts = torch.zeros((1, 1, padded_h, padded_w), device=pixel_values.device)
    for top in rows:
        for left in cols:
            crop = padded[..., top : top + window_h, left : left + window_w]
            logits = _logits(model, crop)
            logits = F.interpolate(logits.float(), size=(window_h, window_w), mode="bilinear", align_corners=False)
            if total is None:
                total = torch.zeros((padded.shape[0], logits.shape[1], padded_h, padded_w), device=logits.device)
            total[..., top : top + window_h, left : left + window_w] += logits
            counts[..., top : top + window_h, left : left + window_w] += 1
    return (total / counts)[..., :height, :width]


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    pixel_values: torch.Tensor,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    window: tuple[int, int] | None = None,
    stride: tuple[int, int] | None = None,
    align_corners: bool = False,
) -> torch.Tensor:
    """Class probabilities at the input resolution, averaged over scales and (optionally) horizontal flips.

    Args:
        model: a `DDRNetForSemanticSegmentation` (or any module returning logits) in eval mode.
        pixel_values: `(batch, 3, H, W)` normalized images.
        scales: input rescaling factors; each scale's softmax is upsampled to `(H, W)` and averaged.
        flip: also run the mirrored image and average its (unmirrored) probabilities.
        window, stride: run each scaled image as overlapping windows (`sliding_window_logits`) instead of whole.
    Returns:
        `(batch, num_labels, H, W)` float32 probabilities.
    """
    height, width = pixel_values.shape[-2:]
    total = None
    runs = 0
    for scale in scales:
        size = (max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5)))
        scaled = pixel_values
        if size != (height, width):
            scaled = F.interpolate(pixel_values, size=size, mode="bilinear", align_corners=align_corners)
        for mirrored in (False, True) if flip else (False,):
            inputs = scaled.flip(-1) if mirrored else scaled
            if window is not None:
                logits = sliding_window_logits(model, inputs, window, stride or window)
            else:
                logits = _logits(model, inputs)
            logits = F.interpolate(logits.float(), size=(height, width), mode="bilinear", align_corners=align_corners)
            probabilities = logits.softmax(dim=1)
            if mirrored:
                probabilities = probabilities.flip(-1)
            total = probabilities if total is None else total + probabilities
            runs += 1
    return total / runs


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """The multi-scale, flip and sliding-window options shared by the evaluation and prediction scripts."""
    group = parser.add_argument_group("inference")
    group.add_argument("--scales", type=float, nargs="+", default=[1.0], help="Input scales to average.")
    group.add_argument("--flip", action="store_true", help="Also average horizontally flipped predictions.")
    group.add_argument("--sliding_window", action="store_true", help="Predict in windows instead of whole.")
    group.add_argument("--window", type=int, nargs=2, default=[1024, 1024], metavar=("H", "W"))
    group.add_argument("--stride", type=int, nargs=2, default=None, metavar=("H", "W"), help="Default: --window.")


def inference_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """`predict_probabilities` keyword arguments from the options of `add_inference_arguments`."""
    if not all(math.isfinite(scale) and scale > 0 for scale in args.scales):
        parser.error(f"--scales must be finite and positive, got {args.scales}")
    window = tuple(args.window) if args.sliding_window else None
    stride = tuple(args.stride) if args.stride and window else window
    if window is not None and min(*window, *stride) < 1:
        parser.error(f"--window and --stride must be positive, got {args.window} and {args.stride}")
    return {"scales": tuple(args.scales), "flip": args.flip, "window": window, "stride": stride}


def predict_classes(
    model: nn.Module, images: np.ndarray, device: torch.device | str = "cpu", inference: dict | None = None
) -> np.ndarray:
    """`(B, H, W, 3)` uint8 RGB images -> `(B, H, W)` uint8 predicted class indices, with `predict_probabilities`
    options `inference` (scales, flip, window, stride) and the model's `align_corners`."""
    pixel_values = torch.from_numpy(np.stack([normalize(image) for image in images])).to(device)
    options = {**(inference or {}), "align_corners": model.config.align_corners}
    return predict_probabilities(model, pixel_values, **options).argmax(dim=1).byte().cpu().numpy()
