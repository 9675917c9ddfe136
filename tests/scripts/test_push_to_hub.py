"""push_to_hub.py end to end: the card, loading the pushed folder back, pushing again."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT, run_script
from huggingface_hub import ModelCard
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

from modeling_ddrnet import DDRNetForSemanticSegmentation, DDRNetImageProcessor


@pytest.mark.slow
def test_push_writes_a_card_and_loads_back_both_ways(synthetic_root, tiny_model_dir, tmp_path):
    model_dir = tmp_path / "model"
    model = DDRNetForSemanticSegmentation.from_pretrained(tiny_model_dir)
    model.save_pretrained(model_dir)
    DDRNetImageProcessor().save_pretrained(model_dir)
    results = {
        "mean_iou": 0.4321,
        "mean_accuracy": 0.5,
        "overall_accuracy": 0.8,
        "split": "validation",
        "dataset": "synthetic_cityscapes",
        "per_category_iou": {"road": 0.9, "rider": None},
    }
    (model_dir / "eval_results.json").write_text(json.dumps(results))
    (model_dir / "training_args.json").write_text(json.dumps({"learning_rate": 0.01, "seed": 304}))
    sample = next((synthetic_root / "leftImg8bit" / "val").glob("*/*.png"))
    hub = tmp_path / "hub"

    result = run_script(
        "push_to_hub.py",
        "--model_name_or_path",
        str(model_dir),
        "--hub_dir",
        str(hub),
        "--repo_id",
        "demo-org/ddrnet-tiny",
        "--sample_image",
        str(sample),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    repo = hub / "demo-org" / "ddrnet-tiny"
    assert {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "README.md",
        "modeling_ddrnet.py",
        "configuration_ddrnet.py",
        "loss_ddrnet.py",
        "image_processing_ddrnet.py",
        "sample_prediction.png",
        "eval_results.json",
        "app.py",
        "requirements.txt",
        "ddrnet_example_1.jpg",
    } <= {p.name for p in repo.iterdir()}
    assert Image.open(repo / "sample_prediction.png").size == (3 * 128, 64)

    card = ModelCard.load(repo / "README.md")
    index = card.data.to_dict()["model-index"][0]
    metric = index["results"][0]["metrics"][0]
    assert metric["type"] == "mean_iou" and metric["value"] == 0.4321
    assert index["results"][0]["dataset"]["name"] == "synthetic_cityscapes"
    assert "| road | 90.00 |" in card.text and "| learning_rate | 0.01 |" in card.text
    assert "arXiv:2101.06085" in card.text

    # With the package installed: no remote code needed.
    loaded = AutoModelForSemanticSegmentation.from_pretrained(repo)
    assert isinstance(loaded, DDRNetForSemanticSegmentation)
    assert isinstance(AutoImageProcessor.from_pretrained(repo), DDRNetImageProcessor)

    # From a process that cannot import the project: only the repo's own code.
    probe = (
        "import sys, torch\n"
        f"sys.path = [p for p in sys.path if p not in ('', '.', {str(REPO_ROOT)!r})]\n"
        "sys.meta_path = [finder for finder in sys.meta_path if '__editable__' not in repr(finder)]\n"
        "from transformers import AutoModelForSemanticSegmentation, AutoImageProcessor\n"
        "try:\n    import modeling_ddrnet\n    raise SystemExit('project importable')\nexcept ImportError:\n    pass\n"
        f"model = AutoModelForSemanticSegmentation.from_pretrained({str(repo)!r}, trust_remote_code=True).eval()\n"
        f"processor = AutoImageProcessor.from_pretrained({str(repo)!r}, trust_remote_code=True)\n"
        "torch.manual_seed(0)\n"
        "print(type(model).__module__, float(model(torch.ones(1, 3, 32, 32)).logits.sum()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_MODULES_CACHE"] = str(tmp_path / "modules")
    isolated = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert isolated.returncode == 0, isolated.stderr[-3000:]
    module, total = isolated.stdout.split()
    assert module.startswith("transformers_modules")
    with torch.no_grad():
        expected = float(loaded.eval()(torch.ones(1, 3, 32, 32)).logits.sum())
    assert abs(float(total) - expected) < 1e-3 * max(1.0, abs(expected))
