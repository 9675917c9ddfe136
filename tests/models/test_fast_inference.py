"""The inference fast path and the ONNX export compute what the plain model computes."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_script, tiny_config

from ddrnet_toolkit.export.onnx import export_onnx, onnx_session
from modeling_ddrnet import DDRNetConfig, DDRNetForSemanticSegmentation
from modeling_ddrnet.fast_inference import fold_batch_norms, prepare_for_inference


def model_with_trained_statistics(config: DDRNetConfig) -> DDRNetForSemanticSegmentation:
    """Random BatchNorm statistics and affine parameters, so that folding has something to fold."""
    torch.manual_seed(0)
    model = DDRNetForSemanticSegmentation(config)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.2)
    return model.eval()


@pytest.mark.parametrize("variant", ["ddrnet-23-slim", "ddrnet-39"])
def test_fast_path_equals_the_plain_model(variant):
    model = model_with_trained_statistics(DDRNetConfig.from_variant(variant))
    fast = prepare_for_inference(model)
    assert fast.aux_head is None and model.aux_head is not None  # a copy: the original is untouched
    remaining = sum(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert remaining < sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) / 3
    pixel_values = torch.randn(1, 3, 128, 192)
    with torch.no_grad():
        expected = model(pixel_values).logits
        actual = fast(pixel_values.contiguous(memory_format=torch.channels_last)).logits
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_folding_needs_eval_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(DDRNetForSemanticSegmentation(tiny_config()).train())


def test_onnx_export_matches_onnxruntime_at_other_sizes(tmp_path):
    model = model_with_trained_statistics(tiny_config())
    path = export_onnx(model, tmp_path / "model.onnx", sample_size=(64, 64))
    session = onnx_session(path)
    for shape in [(1, 3, 64, 64), (3, 3, 96, 200), (2, 3, 250, 370)]:
        pixel_values = torch.randn(shape)
        with torch.no_grad():
            expected = model(pixel_values).logits
        actual = torch.from_numpy(session.run(["logits"], {"pixel_values": pixel_values.numpy()})[0])
        assert actual.shape == expected.shape
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_export_script_checks_itself(tiny_model_dir, tmp_path):
    result = run_script(
        "export_onnx.py",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--output",
        str(tmp_path / "m.onnx"),
        "--check_size",
        "64",
        "128",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "max |difference|" in result.stdout and (tmp_path / "m.onnx").stat().st_size > 0


def test_benchmark_prints_and_writes_a_table(tmp_path):
    result = run_script(
        "benchmark.py",
        "--preset",
        "cpu-small",
        "--height",
        "64",
        "--width",
        "128",
        "--train_crop",
        "64",
        "--modes",
        "fp32",
        "fast_path",
        "--train_modes",
        "fp32",
        "--skip",
        "data",
        "metric",
        "--min_time",
        "0.05",
        "--warmup",
        "1",
        "--output_dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert {(r["task"], r["mode"]) for r in rows} == {
        ("inference", "fp32"),
        ("inference", "fast_path"),
        ("inference", "onnxruntime"),
        ("training", "fp32"),
    }
    assert all(r["throughput"] > 0 for r in rows)
    assert next(r for r in rows if r["mode"] == "fp32" and r["task"] == "inference")["speedup"] == 1.0
    assert "| inference | ddrnet-23-slim | fast_path |" in result.stdout
