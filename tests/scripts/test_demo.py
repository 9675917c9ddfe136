"""The demo's pieces, end to end, at a tiny size (the real `make demo` trains for minutes)."""

from __future__ import annotations

import json

import pytest
from conftest import REPO_ROOT, run_script

pytestmark = pytest.mark.slow


def test_demo_runs_every_step(tmp_path):
    output_dir = tmp_path / "demo"
    result = run_script(
        "demo.py",
        "--output_dir",
        str(output_dir),
        "--num_train",
        "4",
        "--num_val",
        "2",
        "--height",
        "64",
        "--width",
        "128",
        "--max_train_steps",
        "2",
        "--batch_size",
        "2",
        "--crop",
        "64",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((output_dir / "eval_results.json").read_text())
    assert 0 <= results["mean_iou"] <= 1
    assert f"Validation mIoU of the best checkpoint: {results['mean_iou']:.3f}" in result.stdout
    assert len(list((output_dir / "predictions" / "overlay").rglob("*.png"))) == 2  # in their city folders
    repo = output_dir / "hub" / "demo" / "ddrnet-23-slim-synthetic-cityscapes"
    assert (repo / "model.safetensors").is_file()
    assert "name: synthetic-cityscapes" in (repo / "README.md").read_text()
    assert "tensorboard --logdir" in result.stdout


def test_demo_on_the_synthetic_custom_dataset_with_a_recipe(tmp_path):
    output_dir = tmp_path / "demo"
    arguments = ["--output_dir", str(output_dir), "--dataset", "synthetic-custom", "--num_train", "4"]
    arguments += ["--num_val", "2", "--max_train_steps", "2", "--batch_size", "2", "--seed", "7"]
    # A recipe, and flags the demo does not know, which go to train.py as they are.
    arguments += ["--config", str(REPO_ROOT / "configs" / "recipes" / "finetune.yaml"), "--warmup_steps", "1"]
    result = run_script("demo.py", *arguments)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = json.loads((output_dir / "model" / "best_model" / "training_args.json").read_text())
    assert record["recipe"].endswith("finetune.yaml") and record["seed"] == 7
    assert (record["warmup_steps"], record["learning_rate"], record["ema_decay"]) == (1, 0.005, 0.999)
    results = json.loads((output_dir / "eval_results.json").read_text())
    assert list(results["per_category_iou"])[:2] == ["background", "road"]
    assert not (output_dir / "predictions" / "cityscapes").exists()
    card = (output_dir / "hub" / "demo" / "ddrnet-23-slim-synthetic-custom" / "README.md").read_text()
    assert "into the 6 classes of synthetic-custom" in card
