"""convert_original_checkpoint.py end to end: a loadable folder, nothing written on a mismatch, pickles refused."""

from __future__ import annotations

import subprocess
import sys

import torch
from conftest import REPO_ROOT
from original_fixture import fixture_input, fixture_state_dict, layouts, load_fixture

from modeling_ddrnet import DDRNetForSemanticSegmentation


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
