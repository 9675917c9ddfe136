"""ONNX export of the inference graph (folded BatchNorm, no auxiliary head) with dynamic batch and image size."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from modeling_ddrnet.fast_inference import prepare_for_inference
from modeling_ddrnet.modeling_ddrnet import DDRNetForSemanticSegmentation

MIN_OPSET = 17


def max_supported_opset() -> int:
    """The newest opset the installed torch's TorchScript-based exporter (`dynamo=False`, used here) can write."""
    try:
        from torch.onnx import _constants

        return int(getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", _constants.ONNX_MAX_OPSET))
    except (ImportError, AttributeError):  # a torch without the private constants: the newest known to work
        return 20


class LogitsOnly(nn.Module):
    """`pixel_values` -> `logits` as a plain tensor, the interface an ONNX graph needs."""

    def __init__(self, model: DDRNetForSemanticSegmentation):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values, return_dict=True).logits


def export_onnx(
    model: DDRNetForSemanticSegmentation, path: str | Path, opset: int = 17, sample_size: tuple[int, int] = (512, 1024)
) -> Path:
    """Write `path`: input `pixel_values` (batch, 3, height, width), output `logits` (batch, labels, h/8, w/8)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = LogitsOnly(prepare_for_inference(model, channels_last=False)).eval()
    sample = torch.randn(1, model.config.num_channels, *sample_size)
    torch.onnx.export(
        graph,
        (sample,),
        str(path),
        dynamo=False,
        opset_version=opset,
        input_names=["pixel_values"],
        output_names=["logits"],
        dynamic_axes={
            "pixel_values": {0: "batch", 2: "height", 3: "width"},
            "logits": {0: "batch", 2: "logits_height", 3: "logits_width"},
        },
    )
    return path
