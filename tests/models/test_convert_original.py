"""The converter against facts recorded from the original code (see original_fixture.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT
from original_fixture import fixture_input, fixture_state_dict, load_fixture

from modeling_ddrnet import VARIANTS, DDRNetConfig, DDRNetForSemanticSegmentation
from modeling_ddrnet.convert_original import CheckpointConversionError, convert_state_dict


def layouts(state_dict: dict[str, torch.Tensor]) -> dict[str, dict]:
    """The checkpoint layouts found in the wild, built around one original state_dict."""
    return {
        "bare": state_dict,
        "state_dict+module": {"state_dict": {f"module.{k}": v for k, v in state_dict.items()}, "epoch": 3},
        "fullmodel": {**{f"model.{k}": v for k, v in state_dict.items()}, "loss.criterion.weight": torch.ones(19)},
        "wrapped fullmodel": {
            "state_dict": {**{f"model.{k}": v for k, v in state_dict.items()}, "loss.criterion.weight": torch.ones(19)}
        },
    }


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_converted_model_computes_what_the_original_computed(variant):
    facts = load_fixture()[variant]
    original = fixture_state_dict(facts["segmentation_keys"])
    expected = torch.tensor(facts["logits"]).view(facts["logits_shape"])
    expected_aux = torch.tensor(facts["auxiliary_logits"]).view(facts["logits_shape"])
    for name, checkpoint in layouts(original).items():
        model, report = convert_state_dict(checkpoint, DDRNetConfig.from_variant(variant))
        assert len(report.loaded) == len(original), name
        assert report.initialized == [], name
        model.eval()
        with torch.no_grad():
            features = model.ddrnet(fixture_input())
            logits = model.decode_head(features.last_hidden_state)
            aux_logits = model.aux_head(features.auxiliary_hidden_state)
        scale = expected.abs().max()
        torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5 * scale, msg=name)
        torch.testing.assert_close(aux_logits, expected_aux, rtol=1e-4, atol=1e-5 * scale, msg=name)


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


def run_converter(*args: str) -> subprocess.CompletedProcess:
    script = REPO_ROOT / "scripts" / "convert_original_checkpoint.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True)


def test_script_writes_a_loadable_model(tmp_path):
    facts = load_fixture()["ddrnet-23-slim"]
    checkpoint = tmp_path / "best_val_smaller.pth"
    torch.save(layouts(fixture_state_dict(facts["segmentation_keys"]))["fullmodel"], checkpoint)
    out = tmp_path / "converted"
    result = run_converter("--checkpoint", str(checkpoint), "--variant", "ddrnet-23-slim", "--output_dir", str(out))
    assert result.returncode == 0, result.stderr
    assert "loaded 346 tensors" in result.stdout
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.json", "preprocessor_config.json"}
    model = DDRNetForSemanticSegmentation.from_pretrained(out).eval()
    with torch.no_grad():
        logits = model(fixture_input()).logits
    expected = torch.tensor(facts["logits"]).view(facts["logits_shape"])
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


def test_script_writes_nothing_on_a_mismatch(tmp_path):
    checkpoint = tmp_path / "ddrnet39.pth"
    torch.save(fixture_state_dict(load_fixture()["ddrnet-39"]["segmentation_keys"]), checkpoint)
    out = tmp_path / "converted"
    result = run_converter("--checkpoint", str(checkpoint), "--variant", "ddrnet-23", "--output_dir", str(out))
    assert result.returncode == 1
    assert "unexpected key" in result.stderr and "--variant" in result.stderr
    assert not out.exists()


def test_script_refuses_pickled_objects(tmp_path):
    checkpoint = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "object": ValueError("not a tensor")}, checkpoint)
    result = run_converter("--checkpoint", str(checkpoint), "--variant", "ddrnet-23", "--output_dir", str(tmp_path))
    assert result.returncode == 1
    assert "Cannot read" in result.stderr


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
