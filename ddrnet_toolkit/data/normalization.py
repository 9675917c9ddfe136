"""ImageNet normalization of uint8 pixels, on the host for one image or on the device for a batch.

Workers send uint8 images and labels (4x and 8x fewer bytes than float32 pixels and int64 labels);
`normalize_on_device` applies the statistics, the int64 cast and the memory format where the model runs, with the
same float32 operations as `normalize`, so both give the same values.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

# The statistics DDRNetImageProcessor normalizes with, so that training and inference see the same inputs.
IMAGENET_MEAN = np.array(IMAGENET_DEFAULT_MEAN, dtype=np.float32)
IMAGENET_STD = np.array(IMAGENET_DEFAULT_STD, dtype=np.float32)
# `normalize` as a multiply and a subtract, in the same float32 order on the host and on the device.
_SCALE = 1.0 / (255.0 * IMAGENET_STD)
_SHIFT = IMAGENET_MEAN / IMAGENET_STD
# The uint8 colour nearest to the mean: padding normalizes to within 0.006 of 0 even before it is zeroed exactly.
PAD_COLOUR = tuple(int(v) for v in np.round(IMAGENET_MEAN * 255))


def normalize(image: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` uint8 -> `(3, H, W)` float32, ImageNet-normalized."""
    return (image.astype(np.float32) * _SCALE - _SHIFT).transpose(2, 0, 1)


def normalize_on_device(
    batch: dict[str, torch.Tensor], channels_last: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A uint8 batch of `TrainDataset` or `EvalDataset`, on any device, -> the model's inputs there.

    Returns `(B, 3, H, W)` float32 pixels, ImageNet-normalized as `normalize` does (same float32 operations, so
    the same values), with the padding outside `valid_size` exactly 0, in channels_last memory when asked; and
    `(B, H, W)` int64 labels (None when the batch has none).
    """
    pixels = batch["pixel_values"].permute(0, 3, 1, 2)  # NHWC memory seen as NCHW: a channels_last view
    scale = torch.from_numpy(_SCALE).to(pixels.device).view(1, 3, 1, 1)
    shift = torch.from_numpy(_SHIFT).to(pixels.device).view(1, 3, 1, 1)
    pixels = pixels.float() * scale - shift
    if "valid_size" in batch:
        valid_size = batch["valid_size"].to(pixels.device)
        rows = torch.arange(pixels.shape[2], device=pixels.device).view(1, -1, 1)
        cols = torch.arange(pixels.shape[3], device=pixels.device).view(1, 1, -1)
        inside = (rows < valid_size[:, 0].view(-1, 1, 1)) & (cols < valid_size[:, 1].view(-1, 1, 1))
        pixels = pixels.masked_fill(~inside.unsqueeze(1), 0.0)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    labels = batch.get("labels")
    return pixels.contiguous(memory_format=memory_format), None if labels is None else labels.long()
