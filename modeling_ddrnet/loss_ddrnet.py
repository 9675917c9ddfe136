"""Segmentation losses of DDRNet: class-weighted cross entropy, optionally with online hard example mining."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ClassWeights:
    """Per-class loss weights, materialized once per device and dtype.

    Kept out of the module's buffers on purpose: a non-persistent buffer is not in the checkpoint, and a model
    built on the meta device by `from_pretrained` would leave it uninitialized.
    """

    def __init__(self, values: Sequence[float] | None):
        self.values = None if values is None else tuple(float(v) for v in values)
        self._tensors: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def on(self, reference: torch.Tensor) -> torch.Tensor | None:
        if self.values is None:
            return None
        if torch.compiler.is_compiling():
            # A constant of the graph: filling the cache while tracing would recompile the graph on the next call.
            return torch.tensor(self.values, device=reference.device, dtype=reference.dtype)
        key = (reference.device, reference.dtype)
        if key not in self._tensors:
            self._tensors[key] = torch.tensor(self.values, device=reference.device, dtype=reference.dtype)
        return self._tensors[key]


class OhemCrossEntropyLoss(nn.Module):
    """Cross entropy averaged over the hardest pixels of the batch (online hard example mining).

    A pixel is kept when the predicted probability of its true class is below
    `max(threshold, p_k)`, where `p_k` is the `min_kept`-th smallest such probability over the whole batch, so
    at least `min_kept` pixels (or all valid ones) contribute. Kept pixel losses, weighted by `class_weights`, are
    averaged with equal weight, as in the original DDRNet/HRNet code. The selection uses `topk` instead of a full
    sort and never synchronizes with the host, so it stays cheap inside a compiled or asynchronous training step.
    """

    def __init__(
        self,
        threshold: float = 0.9,
        min_kept: int = 131072,
        ignore_index: int = 255,
        class_weights: Sequence[float] | None = None,
    ):
        super().__init__()
        self.threshold = threshold
        self.min_kept = max(1, min_kept)
        self.ignore_index = ignore_index
        self.class_weights = ClassWeights(class_weights)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """
        Args:
            logits: `(batch, num_labels, height, width)`, at the resolution of `labels`.
            labels: `(batch, height, width)` integer class ids, `ignore_index` for pixels to skip.
        Returns:
            A scalar loss.
        """
        weight = self.class_weights.on(logits)
        pixel_losses = F.cross_entropy(
            logits, labels, weight=weight, ignore_index=self.ignore_index, reduction="none"
        ).flatten()
        valid = (labels != self.ignore_index).flatten()
        safe_labels = torch.where(valid, labels.flatten(), 0)
        # The unweighted loss is -log p(true class): divide out the class weight instead of a second softmax.
        nll = pixel_losses if weight is None else pixel_losses / weight[safe_labels]
        true_class_probs = torch.exp(-nll.float())
        # Ignored pixels sort after every valid one.
        true_class_probs = torch.where(valid, true_class_probs, 2.0)
        k = min(self.min_kept + 1, true_class_probs.numel())
        smallest = torch.topk(true_class_probs, k, largest=False, sorted=True).values
        kth_index = (valid.sum() - 1).clamp(min=0, max=k - 1)
        kth_prob = smallest.gather(0, kth_index[None]).squeeze(0)
        threshold = torch.clamp(kth_prob, min=self.threshold)
        keep = valid & (true_class_probs < threshold)
        kept = keep.sum()
        return (pixel_losses * keep).sum() / kept.clamp(min=1).to(pixel_losses.dtype)


class WeightedCrossEntropyLoss(nn.Module):
    """Plain class-weighted cross entropy that skips `ignore_index`."""

    def __init__(self, ignore_index: int = 255, class_weights: Sequence[float] | None = None):
        super().__init__()
        self.ignore_index = ignore_index
        self.class_weights = ClassWeights(class_weights)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = self.class_weights.on(logits)
        return F.cross_entropy(logits, labels, weight=weight, ignore_index=self.ignore_index)
