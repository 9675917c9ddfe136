"""Knowledge distillation from a frozen teacher DDRNet: the term it adds to the student's own loss.

Two terms, both between the teacher's and the student's main-head scores at the labels' resolution, softened by a
temperature `T` and scaled by `T^2` (so that their gradients keep their size as `T` changes), ignored pixels left out:

- `pixel`: at every valid pixel, the KL divergence from the teacher's class distribution to the student's, averaged
  over the valid pixels.
- `channel` (channel-wise distillation, Shu et al. 2021, as super-gradients' DDRNet recipe uses it): each class
  channel of each image becomes a distribution over the valid pixels (a softmax over the positions); the KL
  divergence from the teacher's to the student's, summed over the positions and averaged over the (image, class)
  maps.

The teacher runs in eval mode without gradients, under the run's autocast, on every process; it is never wrapped
for distributed training nor saved: only the student is trained and checkpointed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

from modeling_ddrnet import DDRNetForSemanticSegmentation

from ..errors import UserInputError
from ..model_folder import class_names, load_trained_model

DISTILLATION_MODES = ("channel", "pixel")
# Each mode's weight when none is given: super-gradients' CWD weight (their DDRNet recipe: 6 at T=3); the pixel
# term, already of the cross entropy's size, at 1.
DEFAULT_WEIGHTS = {"channel": 6.0, "pixel": 1.0}
DEFAULT_TEMPERATURE = 3.0
# A finite stand-in for minus infinity: exp() of it is exactly 0 in float32, and nothing becomes NaN (0 * -inf).
_EXCLUDED = -1e9


def pixel_distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid: torch.Tensor, temperature: float
) -> torch.Tensor:
    """`T^2` times the mean over valid pixels of `KL(softmax(t / T) || softmax(s / T))` over the classes.

    Args:
        student_logits, teacher_logits: `(batch, num_labels, height, width)`.
        valid: `(batch, height, width)` bool, the pixels that count.
    Returns:
        A float32 scalar; 0 when no pixel is valid.
    """
    student = (student_logits.float() / temperature).log_softmax(dim=1)
    teacher = (teacher_logits.float() / temperature).log_softmax(dim=1)
    divergence = (teacher.exp() * (teacher - student)).sum(dim=1)
    return temperature**2 * (divergence * valid).sum() / valid.sum().clamp(min=1)


def channel_distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, valid: torch.Tensor, temperature: float
) -> torch.Tensor:
    """`T^2` times the mean over the `(image, class)` maps of `KL(softmax(t / T) || softmax(s / T))` over the valid
    positions of the map.

    Args:
        student_logits, teacher_logits: `(batch, num_labels, height, width)`.
        valid: `(batch, height, width)` bool, the pixels that count.
    Returns:
        A float32 scalar; 0 for an image with no valid pixel.
    """
    batch, num_labels = student_logits.shape[:2]
    outside = ~valid.view(batch, 1, -1)

    def spread(logits: torch.Tensor) -> torch.Tensor:
        scaled = (logits.float() / temperature).view(batch, num_labels, -1).masked_fill(outside, _EXCLUDED)
        return scaled.log_softmax(dim=-1)

    student, teacher = spread(student_logits), spread(teacher_logits)
    divergence = (teacher.exp() * (teacher - student)).sum(dim=-1)
    return temperature**2 * divergence.mean()


DISTILLATION_LOSSES = {"pixel": pixel_distillation_loss, "channel": channel_distillation_loss}


class Teacher:
    """A frozen DDRNet whose scores the student learns to match, and the weighted term that adds to its loss."""

    def __init__(
        self,
        model: DDRNetForSemanticSegmentation,
        mode: str,
        weight: float,
        temperature: float,
        autocast: Callable[[], AbstractContextManager] = nullcontext,
    ):
        self.model = model.eval().requires_grad_(False)
        self.mode, self.weight, self.temperature = mode, weight, temperature
        self.autocast = autocast

    def loss(
        self, pixel_values: torch.Tensor, student_logits: torch.Tensor, labels: torch.Tensor, align_corners: bool
    ) -> torch.Tensor:
        """The unweighted distillation term of one batch: both models' scores upsampled to `labels`' size.

        Args:
            pixel_values: `(batch, 3, height, width)`, the student's input.
            student_logits: `(batch, num_labels, height / 8, width / 8)`, with their graph.
            labels: `(batch, height, width)`, `semantic_loss_ignore_index` where pixels are ignored.
            align_corners: the student's upsampling mode.
        """
        with torch.no_grad(), self.autocast():
            teacher_logits = self.model(pixel_values=pixel_values).logits
        size = labels.shape[-2:]
        teacher_logits = F.interpolate(
            teacher_logits.float(), size=size, mode="bilinear", align_corners=self.model.config.align_corners
        )
        student_logits = F.interpolate(student_logits, size=size, mode="bilinear", align_corners=align_corners)
        valid = labels != self.model.config.semantic_loss_ignore_index
        return DISTILLATION_LOSSES[self.mode](student_logits, teacher_logits, valid, self.temperature)

    def describe(self) -> str:
        return (
            f"{self.model.config.name_or_path} ({self.mode}-wise distillation, weight {self.weight:g}, "
            f"temperature {self.temperature:g})"
        )


def load_teacher(
    path: str | Path,
    student_classes: list[str],
    ignore_index: int,
    mode: str,
    weight: float | None,
    temperature: float,
    device: torch.device,
    channels_last: bool = False,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> Teacher:
    """A trained DDRNet folder (any variant) as the teacher of a student with `student_classes`, on `device`;
    `autocast` makes the context its forward runs in (the run's mixed precision, e.g. `accelerator.autocast`).

    Raises `UserInputError` naming `--teacher_model_name_or_path` for a folder that is not a complete, finite model
    or whose classes (names, in order) or ignore value are not the student's.
    """
    try:
        model = load_trained_model(path)
    except UserInputError as error:
        raise UserInputError(f"--teacher_model_name_or_path: {error}") from error
    teacher_classes = class_names(model.config)
    if teacher_classes != list(student_classes):
        raise UserInputError(
            f"--teacher_model_name_or_path {path}: the teacher's {len(teacher_classes)} classes "
            f"({', '.join(teacher_classes[:4])}, ...) are not the student's {len(student_classes)} "
            f"({', '.join(student_classes[:4])}, ...): a teacher must be trained on the same classes, in the same order"
        )
    if model.config.semantic_loss_ignore_index != ignore_index:
        raise UserInputError(
            f"--teacher_model_name_or_path {path}: the teacher ignores label {model.config.semantic_loss_ignore_index}"
            f", the student {ignore_index}"
        )
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    return Teacher(model, mode, DEFAULT_WEIGHTS[mode] if weight is None else weight, temperature, autocast)
