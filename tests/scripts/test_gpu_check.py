"""gpu_check.py --quick end to end: every section's code runs at tiny sizes on this machine, so the check that a GPU
session will run in one command cannot rot."""

from __future__ import annotations

import json

import pytest
from conftest import run_script

from ddrnet_toolkit.benchmarking.gpu_check import SECTION_NAMES


@pytest.mark.slow
def test_the_quick_check_runs_every_section_and_writes_its_table(tmp_path):
    result = run_script("gpu_check.py", "--quick", "--output_dir", str(tmp_path), timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    rows = report["rows"]
    assert not [row for row in rows if row["status"] in ("FAIL", "error")]
    assert list(report["section_seconds"]) == list(SECTION_NAMES)
    skipped = [row["section"] for row in rows if row["status"] == "skipped"]
    on_gpu = report["facts"]["device_type"] == "cuda"
    assert skipped == ([] if on_gpu and report["facts"]["gpus"] > 1 else ["multi-GPU"])  # rows name it so
    cases = {(row["section"], row["case"]) for row in rows}
    for precision in ("no", "fp16"):
        assert ("training run", f"accelerate launch --mixed_precision {precision}") in cases
    assert {
        ("training run", "mIoU spread"),
        ("evaluation", "ms + flip, fp32"),
        ("evaluation", "sliding window, fp32"),
    } <= cases
    assert ("inference", "fast path") in cases and ("onnxruntime", "exported graph, fp32") in cases
    assert any("CUDA graph" in case for _, case in cases) == on_gpu
    assert any(section == "training step" and "torch.compile" in case for section, case in cases)
    runs = [row for row in rows if row["case"].startswith("accelerate launch")]
    assert all(row["images_per_second"] > 0 and "skipped step(s), mIoU" in row["result"] for row in runs)
    # The printed table is the written one, under its one-line header.
    written = (tmp_path / "gpu_check.md").read_text()
    header = written.splitlines()[0]
    assert header.startswith("GPU check ") and f"torch {report['facts']['torch']}" in header
    assert (
        header in result.stdout and "| section | case | input | ms | images/s | peak MB | result | status |" in written
    )
    assert (tmp_path / "logs" / "train-fp16.log").is_file() and not (tmp_path / "errors.log").exists()
