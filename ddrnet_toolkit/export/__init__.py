"""Deployment formats: the ONNX inference graph, its int8 quantization, and the export checked against PyTorch.

onnxruntime is imported only where a graph is run or quantized (the `onnx` extra)."""

from .checked_export import ExportReport, Int8Calibration, export_checked
from .int8 import quantize_int8
from .onnx import OnnxRuntimeLogits, export_onnx

__all__ = ["ExportReport", "Int8Calibration", "OnnxRuntimeLogits", "export_checked", "export_onnx", "quantize_int8"]
