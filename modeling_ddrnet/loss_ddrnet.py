"""Segmentation losses of DDRNet: class-weighted cross entropy, with online hard example mining (the paper's), plain,
or with Dice and a boundary term (super-gradients' recipe); `segmentation_loss` picks the config's."""

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


def label_boundaries(labels: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """`(batch, height, width)` bool: the pixels within `kernel_size // 2` pixels (a square) of another label value.

    The ignore value counts as a value, so a class pixel beside an ignored region is a boundary pixel too; the image
    border is not a boundary (the labels are extended by replication).
    """
    pad = kernel_size // 2
    values = F.pad(labels[:, None].float(), (pad, pad, pad, pad), mode="replicate")
    highest = F.max_pool2d(values, kernel_size, stride=1)
    lowest = -F.max_pool2d(-values, kernel_size, stride=1)
    return (highest != lowest)[:, 0]


class DiceCrossEntropyEdgeLoss(nn.Module):
    """Cross entropy, cross entropy on label boundaries and Dice, summed:
    `loss = 0.5 * CE + 0.5 * CE_boundary + Dice`, the loss of super-gradients' DDRNet recipe.

    - `CE`: class-weighted cross entropy, the weighted mean over the valid pixels (as `F.cross_entropy`).
    - `CE_boundary`: the same mean over the valid pixels that `label_boundaries(labels, edge_kernel_size)` marks.
    - `Dice`: the mean over the classes of `1 - (2 * sum(p_c * y_c) + 1) / (sum(p_c) + sum(y_c) + 1)`, with `p` the
      softmax, `y` the one-hot labels and the sums over the batch's valid pixels; a class absent from the batch still
      counts (its loss pushes its probability down). Class weights do not enter Dice: it weighs every class equally.

    Ignored pixels enter no term. The softmax and the sums run in float32, also under autocast.
    """

    def __init__(
        self, ignore_index: int = 255, class_weights: Sequence[float] | None = None, edge_kernel_size: int = 5
    ):
        super().__init__()
        self.ignore_index = ignore_index
        self.class_weights = ClassWeights(class_weights)
        self.edge_kernel_size = edge_kernel_size

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """
        Args:
            logits: `(batch, num_labels, height, width)`, at the resolution of `labels`.
            labels: `(batch, height, width)` integer class ids, `ignore_index` for pixels to skip.
        Returns:
            A scalar loss.
        """
        logits = logits.float()
        weight = self.class_weights.on(logits)
        valid = labels != self.ignore_index
        safe_labels = torch.where(valid, labels, 0)
        pixel_losses = F.cross_entropy(logits, labels, weight=weight, ignore_index=self.ignore_index, reduction="none")
        pixel_weights = valid.float() if weight is None else weight[safe_labels] * valid
        boundary = label_boundaries(labels, self.edge_kernel_size) & valid
        cross_entropy = pixel_losses.sum() / pixel_weights.sum().clamp(min=1e-12)
        boundary_cross_entropy = (pixel_losses * boundary).sum() / (pixel_weights * boundary).sum().clamp(min=1e-12)

        probabilities = logits.softmax(dim=1) * valid[:, None]
        one_hot = F.one_hot(safe_labels, logits.shape[1]).permute(0, 3, 1, 2) * valid[:, None]
        intersection = (probabilities * one_hot).sum(dim=(0, 2, 3))
        total = probabilities.sum(dim=(0, 2, 3)) + one_hot.sum(dim=(0, 2, 3))
        dice = (1 - (2 * intersection + 1) / (total + 1)).mean()
        return 0.5 * cross_entropy + 0.5 * boundary_cross_entropy + dice


def segmentation_loss(config) -> nn.Module:
    """The loss module that `config.loss_type` names, with the config's class weights and ignore index."""
    ignore_index, class_weights = config.semantic_loss_ignore_index, config.class_weights
    if config.loss_type == "ohem":
        return OhemCrossEntropyLoss(config.ohem_threshold, config.ohem_min_kept, ignore_index, class_weights)
    if config.loss_type == "dice_ce_edge":
        return DiceCrossEntropyEdgeLoss(ignore_index, class_weights, config.edge_kernel_size)
    return WeightedCrossEntropyLoss(ignore_index, class_weights)
