"""benchmark.py end to end: the table and the files it writes."""

from __future__ import annotations

import json

import pytest
from conftest import load_script, run_script

benchmark_script = load_script("benchmark")


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


def test_benchmark_reports_int8_rows_and_mean_iou(tiny_model_dir, synthetic_root, cache_dir, tmp_path):
    result = run_script(
        "benchmark.py",
        "--preset",
        "cpu-small",
        "--height",
        "64",
        "--width",
        "128",
        "--skip",
        "inference",
        "onnxruntime",
        "training",
        "data",
        "metric",
        "--min_time",
        "0.05",
        "--warmup",
        "1",
        "--int8_model_name_or_path",
        str(tiny_model_dir),
        "--int8_data_dir",
        str(synthetic_root),
        "--num_calibration_images",
        "4",
        "--cache_dir",
        str(cache_dir),
        "--output_dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    rows = {row["mode"]: row for row in results["rows"]}
    assert set(rows) == {"fp32", "fast_path", "onnxruntime", "onnxruntime int8"}
    assert all(row["task"] == "int8 comparison" and row["throughput"] > 0 for row in rows.values())
    assert rows["fp32"]["speedup"] == 1.0
    int8 = results["int8"]
    assert int8["num_images"] == 3 and int8["eval_split"] == "validation"
    assert 0 <= int8["mean_iou_int8"] <= 1 and 0 <= int8["label_disagreement"] < 0.1
    ratio = rows["onnxruntime"]["seconds"] / rows["onnxruntime int8"]["seconds"]
    assert int8["speedup_vs_onnxruntime_fp32"] == pytest.approx(ratio)
    assert "| int8 comparison | custom | onnxruntime int8 |" in result.stdout and "| mIoU fp32 |" in result.stdout


def test_benchmark_int8_needs_model_and_data(capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark_script.parse_args(["--int8_model_name_or_path", "some/model"])
    assert exit_info.value.code == 2 and "go together" in capsys.readouterr().err


@pytest.mark.slow
def test_the_scaling_preset_measures_every_study_and_draws_them(tmp_path):
    arguments = ["--preset", "scaling", "--scaling_plan", "smoke", "--device", "cpu", "--output_dir", str(tmp_path)]
    result = run_script("benchmark.py", *arguments)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "scaling.json").read_text())
    studies = {row["study"] for row in results["rows"]}
    assert studies == {
        "inference (whole image)",
        "inference (sliding window)",
        "training step",
        "evaluation",
        "preparation (1 process)",
        "preparation (2 processes)",
        "storage",
        "data loading",
    }
    assert all(row["seconds"] > 0 for row in results["rows"])
    inference = [row for row in results["rows"] if row["study"].startswith("inference")]
    assert all(row["peak_mb"] > 0 and row["extra"]["memory"].startswith("peak RSS") for row in inference)
    storage = {row["setting"]: row["extra"] for row in results["rows"] if row["study"] == "storage"}
    assert (
        storage["PNG files, stored uncompressed"]["mb_per_image"]
        > storage["PNG files, stored as they are"]["mb_per_image"]
    )
    assert results["preparation_consistency"] == {"same_rows": True, "same_cache_key": True}
    assert {(fit["study"], fit["quantity"]) for fit in results["fits"]} >= {
        ("inference (whole image)", "seconds"),
        ("training step", "seconds"),
        ("evaluation", "seconds"),
        ("preparation (2 processes)", "seconds"),
    }
    assert (tmp_path / "scaling.png").read_bytes().startswith(b"\x89PNG")
    assert "| study | what | fitted growth |" in (tmp_path / "scaling.md").read_text()
