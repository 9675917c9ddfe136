"""An export that is written only when it computes what the model computes.

Both targets start from the ONNX inference graph: `onnx` writes it, `openvino` converts it to an OpenVINO IR. The
fp32 export is checked against PyTorch on the engine that will run it (onnxruntime, OpenVINO); the int8 export,
when asked for, against the fp32 one on calibration images. Everything is written into a staging folder beside the
output and renamed into place only when every check passes, the int8 files first, so that a refused int8 export
leaves an existing fp32 file untouched too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import torch

from modeling_ddrnet import DDRNetForSemanticSegmentation

from ..errors import UserInputError
from ..files import full_disk_named, staging_folder
from ..inference.engines import Engine, OnnxRuntimeEngine, OpenVinoEngine
from .int8 import Agreement, CalibrationImages, compare_predictions, int8_path, quantize_int8
from .onnx import export_onnx
from .openvino import NncfSettings, convert_onnx, openvino_files, quantize_openvino, read_openvino, save_openvino

TARGETS = ("onnx", "openvino")


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

    def images(self) -> CalibrationImages:
        return CalibrationImages(self.split, self.indices)


@dataclass
class ExportReport:
    path: Path
    engine: str  # the engine the export was checked on
    difference: float  # largest |exported - PyTorch| logit on the check inputs
    scale: float  # largest |PyTorch logit|
    int8_path: Path | None = None
    agreement: Agreement | None = None


def exported_files(path: Path, target: str) -> list[Path]:
    """The files an export to `path` consists of, in the order they are renamed into place."""
    return openvino_files(path) if target == "openvino" else [path]


def target_engine(target: str, path: Path, model: DDRNetForSemanticSegmentation) -> Engine:
    return OpenVinoEngine(path, model.config) if target == "openvino" else OnnxRuntimeEngine(path, model.config)


def write_fp32(target: str, model: DDRNetForSemanticSegmentation, folder: Path, opset: int) -> Path:
    """The fp32 export of `target` in `folder`; returns its path."""
    onnx_file = export_onnx(model, folder / "model.onnx", opset)
    if target == "onnx":
        return onnx_file
    return save_openvino(convert_onnx(onnx_file), folder / "model.xml")


def write_int8(target: str, fp32: Path, calibration: Int8Calibration, settings: NncfSettings | None) -> Path:
    """The int8 export of the fp32 export at `fp32`, next to it; returns its path."""
    if target == "onnx":
        return quantize_int8(fp32, int8_path(fp32), calibration.images())
    quantized = quantize_openvino(read_openvino(fp32), calibration.images(), settings)
    return save_openvino(quantized, int8_path(fp32))


def max_difference(model: DDRNetForSemanticSegmentation, engine: Engine, pixel_values: torch.Tensor):
    """Largest absolute difference between the PyTorch logits and the engine's, and the logits' scale."""
    with torch.no_grad():
        expected = model.eval()(pixel_values).logits
    return float((engine(pixel_values) - expected).abs().max()), float(expected.abs().max())


def check_int8(fp32: Engine, int8: Engine, calibration: Int8Calibration, model) -> Agreement:
    """Compare the labels of the int8 and fp32 engines on the calibration images, within the bound."""
    agreement = compare_predictions(fp32, int8, calibration.images(), model.config)
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
    target: str = "onnx",
    opset: int,
    check_size: tuple[int, int],
    tolerance: float,
    int8: Int8Calibration | None = None,
    nncf_settings: NncfSettings | None = None,
) -> ExportReport:
    """Export `model` to `output` (`target` onnx: a .onnx file; openvino: an .xml IR and its .bin), and its int8
    export beside it with `int8`, when the engine's logits on two random `check_size` images differ from PyTorch's
    by at most `tolerance` times the largest logit (at least 1)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    check = torch.randn(2, model.config.num_channels, *check_size)
    with full_disk_named(output.parent), staging_folder(output) as staging:
        fp32 = write_fp32(target, model, staging, opset)
        fp32_engine = target_engine(target, fp32, model)
        difference, scale = max_difference(model, fp32_engine, check)
        report = ExportReport(output, fp32_engine.name, difference, scale)
        if difference > tolerance * max(scale, 1.0):
            raise ExportCheckError(
                f"{fp32_engine.name} output differs from PyTorch by {difference:.2e} (max |logit| {scale:.2e}); "
                f"nothing was written to {output}",
                bound="tolerance",
            )
        renames = []
        if int8 is not None:
            int8_file = write_int8(target, fp32, int8, nncf_settings)
            report.agreement = check_int8(fp32_engine, target_engine(target, int8_file, model), int8, model)
            report.int8_path = int8_path(output)
            renames += zip(exported_files(int8_file, target), exported_files(report.int8_path, target), strict=True)
        renames += zip(exported_files(fp32, target), exported_files(output, target), strict=True)
        for source, destination in renames:
            os.replace(source, destination)
    return report
