"""The demo's pieces, end to end, at a tiny size (the real `make demo` trains for minutes)."""

from __future__ import annotations

import json

from conftest import run_script


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
