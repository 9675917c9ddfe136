"""The export subpackage: the ONNX graph computes what the model computes, at any size."""

from __future__ import annotations

import torch
from conftest import model_with_trained_statistics, tiny_config

from ddrnet_toolkit.export.onnx import export_onnx
from ddrnet_toolkit.inference.engines import onnx_session


def test_onnx_export_matches_onnxruntime_at_other_sizes(tmp_path):
    model = model_with_trained_statistics(tiny_config())
    path = export_onnx(model, tmp_path / "model.onnx", sample_size=(64, 64))
    session = onnx_session(path)
    for shape in [(1, 3, 64, 64), (3, 3, 96, 200), (2, 3, 250, 370), (1, 3, 360, 480)]:  # 360: CamVid, not 16k
        pixel_values = torch.randn(shape)
        with torch.no_grad():
            expected = model(pixel_values).logits
        actual = torch.from_numpy(session.run(["logits"], {"pixel_values": pixel_values.numpy()})[0])
        assert actual.shape == expected.shape
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
