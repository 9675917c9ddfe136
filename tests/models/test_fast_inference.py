"""The inference fast path and the ONNX export compute what the plain model computes."""

from __future__ import annotations

import pytest
import torch
from conftest import model_with_trained_statistics, tiny_config

from modeling_ddrnet import DDRNetConfig, DDRNetForSemanticSegmentation
from modeling_ddrnet.fast_inference import fold_batch_norms, prepare_for_inference


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
