"""The converter against facts recorded from the original code (see original_fixture.py)."""

from __future__ import annotations

import pytest
import torch
from original_fixture import fixture_state_dict, load_fixture

from modeling_ddrnet import VARIANTS, DDRNetConfig
from modeling_ddrnet.convert_original import CheckpointConversionError, convert_state_dict


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_imagenet_checkpoint_gives_backbone_and_fresh_heads(variant):
    facts = load_fixture()[variant]
    imagenet = fixture_state_dict(facts["imagenet_keys"])
    model, report = convert_state_dict(imagenet, DDRNetConfig.from_variant(variant))
    assert {k.split(".")[0] for k in report.discarded} == {"down5", "last_layer", "linear"}
    assert all(k.startswith(("ddrnet.dappm.", "decode_head.", "aux_head.")) for k in report.initialized)
    assert any(k.startswith("ddrnet.dappm.") for k in report.initialized)
    # The backbone tensors are the checkpoint's, detail branch and fusion layers included.
    state = model.state_dict()
    torch.testing.assert_close(state["ddrnet.stem.conv1.bias"], imagenet["conv1.0.bias"])
    last_stage = len(model.ddrnet.stages) - 1
    torch.testing.assert_close(state[f"ddrnet.stages.{last_stage}.down.3.weight"], imagenet["down4.3.weight"])
    torch.testing.assert_close(state["ddrnet.detail_bottleneck.conv3.weight"], imagenet["layer5_.0.conv3.weight"])


def test_wrong_variant_is_a_clear_error():
    slim = fixture_state_dict(load_fixture()["ddrnet-23-slim"]["segmentation_keys"])
    with pytest.raises(CheckpointConversionError, match="shape mismatch"):
        convert_state_dict(slim, DDRNetConfig.from_variant("ddrnet-23"))
    ddrnet39 = fixture_state_dict(load_fixture()["ddrnet-39"]["segmentation_keys"])
    with pytest.raises(CheckpointConversionError, match="unexpected key"):
        convert_state_dict(ddrnet39, DDRNetConfig.from_variant("ddrnet-23"))


def test_auxiliary_head_can_be_dropped():
    slim = fixture_state_dict(load_fixture()["ddrnet-23-slim"]["segmentation_keys"])
    model, report = convert_state_dict(slim, DDRNetConfig.from_variant("ddrnet-23-slim", use_auxiliary_head=False))
    assert model.aux_head is None
    assert sum(k.startswith("seghead_extra.") for k in report.discarded) == 13


# Tensors an ImageNet checkpoint gives each part of the network (its 20 classifier keys are dropped).
DDRNET_23_IMAGENET_PARTS = {
    "stem and layers 1-2": 68,
    "low-resolution (context) branch": 84,
    "high-resolution (detail) branch": 72,
    "bilateral fusion": 30,
}
IMAGENET_TENSORS_PER_PART = {
    "ddrnet-23-slim": DDRNET_23_IMAGENET_PARTS,
    "ddrnet-23": DDRNET_23_IMAGENET_PARTS,
    "ddrnet-39": {
        "stem and layers 1-2": 104,
        "low-resolution (context) branch": 144,
        "high-resolution (detail) branch": 132,
        "bilateral fusion": 42,
    },
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_imagenet_report_counts_the_tensors_of_both_branches_and_the_fusion(variant):
    imagenet = fixture_state_dict(load_fixture()[variant]["imagenet_keys"])
    _, report = convert_state_dict(imagenet, DDRNetConfig.from_variant(variant))
    expected = IMAGENET_TENSORS_PER_PART[variant]
    assert report.loaded_per_part() == expected
    assert sum(expected.values()) == len(report.loaded) == len(imagenet) - 20
    assert report.summary().startswith(f"loaded {len(report.loaded)} tensors: stem and layers 1-2 ")
    assert "DAPPM" not in report.loaded_per_part() and "heads" not in report.loaded_per_part()
