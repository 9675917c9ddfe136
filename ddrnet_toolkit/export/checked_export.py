"""An export that is written only when it computes what the model computes.

The fp32 graph is checked against PyTorch with onnxruntime; the int8 graph, when asked for, against the fp32 graph
on calibration images. Both are written under temporary names and renamed into place only when every check
passes, the int8 graph first, so that a refused int8 graph leaves an existing fp32 file untouched too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import torch

from modeling_ddrnet import DDRNetForSemanticSegmentation

from ..errors import UserInputError
from ..files import full_disk_named, written_atomically
from .int8 import Agreement, compare_predictions, int8_path, quantize_int8, split_samples
from .onnx import OnnxRuntimeLogits, export_onnx, max_difference_with_onnxruntime


class ExportCheckError(UserInputError):
    """An exported graph that does not compute what it should; `bound` names the limit it broke."""

    def __init__(self, message: str, bound: str):
        super().__init__(message)
        self.bound = bound


@dataclass
class Int8Calibration:
    """The images whose activation ranges calibrate the int8 graph and on which it is checked against fp32."""

    split: datasets.Dataset
    indices: Sequence[int]
    split_name: str
    max_label_disagreement: float  # fraction of the pixels


@dataclass
class ExportReport:
    path: Path
    difference: float  # largest |onnxruntime - PyTorch| logit on the check inputs
    scale: float  # largest |PyTorch logit|
    int8_path: Path | None = None
    agreement: Agreement | None = None


def check_int8(fp32: Path, int8: Path, calibration: Int8Calibration, model: DDRNetForSemanticSegmentation) -> Agreement:
    """Quantize `fp32` into `int8` and compare their labels on the calibration images."""
    quantize_int8(fp32, int8, split_samples(calibration.split, calibration.indices))
    samples = split_samples(calibration.split, calibration.indices)
    agreement = compare_predictions(OnnxRuntimeLogits(fp32), OnnxRuntimeLogits(int8), samples, model.config)
    if agreement.disagreement > calibration.max_label_disagreement:
        raise ExportCheckError(
            f"int8 and fp32 predict different labels on {agreement.disagreement:.2%} of the pixels of "
            f"{len(calibration.indices)} {calibration.split_name} images; nothing was written",
            bound="max_label_disagreement",
        )
    return agreement


def export_checked(
    model: DDRNetForSemanticSegmentation,
    output: Path,
    *,
    opset: int,
    check_size: tuple[int, int],
    tolerance: float,
    int8: Int8Calibration | None = None,
) -> ExportReport:
    """Export `model` to `output` (and its int8 graph beside it with `int8`) when onnxruntime's logits on two random
    `check_size` images differ from PyTorch's by at most `tolerance` times the largest logit (at least 1)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    check = torch.randn(2, model.config.num_channels, *check_size)
    with full_disk_named(output.parent), written_atomically(output) as fp32_temporary:
        export_onnx(model, fp32_temporary, opset)
        difference, scale = max_difference_with_onnxruntime(model, fp32_temporary, check)
        report = ExportReport(output, difference, scale)
        if difference > tolerance * max(scale, 1.0):
            raise ExportCheckError(
                f"onnxruntime output differs from PyTorch by {difference:.2e} (max |logit| {scale:.2e}); nothing was "
                f"written to {output}",
                bound="tolerance",
            )
        if int8 is not None:
            report.int8_path = int8_path(output)
            with written_atomically(report.int8_path) as int8_temporary:
                report.agreement = check_int8(fp32_temporary, int8_temporary, int8, model)
    return report
