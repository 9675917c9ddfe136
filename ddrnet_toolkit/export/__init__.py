"""Deployment formats: the ONNX inference graph, the OpenVINO IR, their int8 quantization, and the export checked
against PyTorch.

onnxruntime, OpenVINO and NNCF are imported only where a graph is run, converted or quantized (the `onnx` and
`openvino` extras)."""

from .checked_export import TARGETS, ExportReport, Int8Calibration, export_checked
from .int8 import quantize_int8
from .onnx import export_onnx
from .openvino import NncfSettings, quantize_openvino

__all__ = [
    "TARGETS",
    "ExportReport",
    "Int8Calibration",
    "NncfSettings",
    "export_checked",
    "export_onnx",
    "quantize_int8",
    "quantize_openvino",
]
