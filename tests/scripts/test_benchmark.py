"""benchmark.py end to end: the table and the files it writes."""

from __future__ import annotations

import json

import pytest
from conftest import load_script, run_script

from ddrnet_toolkit.benchmarking.int8 import count_macs
from modeling_ddrnet import DDRNetConfig, DDRNetForSemanticSegmentation

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


def test_benchmark_reports_every_engine_and_the_end_to_end_prediction(
    tiny_model_dir, synthetic_root, cache_dir, tmp_path
):
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
        "--prediction_images",
        "2",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    rows = {row["mode"]: row for row in results["rows"] if row["task"] == "engines"}
    exported = ["onnxruntime", "onnxruntime int8", "openvino", "openvino, OpenVINO's precision choice", "openvino int8"]
    assert list(rows) == ["fp32", "fast_path", *exported]
    assert all(row["throughput"] > 0 for row in rows.values()) and rows["fp32"]["speedup"] == 1.0
    predicted = {row["mode"]: row for row in results["rows"] if row["task"] == "predict.py end to end"}
    assert list(predicted) == ["pytorch", "onnxruntime int8", "openvino int8"]
    for row in predicted.values():
        assert row["shape"] == "2x3x64x128 PNG -> color+overlay" and row["throughput"] > 0

    engines = results["engines"]
    assert engines["num_images"] == 3 and engines["eval_split"] == "validation" and engines["fp32_peak_gmacs"] > 0
    by_mode = {engine["mode"]: engine for engine in engines["engines"]}
    assert list(by_mode) == list(rows)
    for mode, engine in by_mode.items():
        assert engine["seconds"] == pytest.approx(rows[mode]["seconds"]) and 0 <= engine["mean_iou"] <= 1
        expected = {"int8"} if "int8" in mode else {"bf16", "fp32"} if "choice" in mode else {"fp32"}
        assert engine["precision"] in expected  # OpenVINO's choice: bf16 where the CPU has it
        assert engine["peak_share"] > 0
        # GMAC/s: the network's multiply-accumulates at 64x128 over the engine's time.
        macs = by_mode["fp32"]["gmacs"] * by_mode["fp32"]["seconds"]
        assert engine["gmacs"] == pytest.approx(macs / engine["seconds"])
    assert by_mode["fp32"]["disagreement"] == by_mode["fast_path"]["disagreement"] == 0
    assert by_mode["onnxruntime"]["disagreement"] < 0.01 and by_mode["openvino"]["disagreement"] < 0.01
    assert by_mode["onnxruntime int8"]["disagreement"] < 0.2 and by_mode["openvino int8"]["disagreement"] < 0.2
    assert "| engines | custom | openvino int8 |" in result.stdout and "| labels changed |" in result.stdout


@pytest.mark.parametrize(("variant", "gmacs"), [("ddrnet-23-slim", 36.3), ("ddrnet-23", 143.1)])
def test_multiply_accumulates_are_the_papers(variant, gmacs):
    """The paper's Table 4 counts 36.3 and 143.1 GFLOPs (multiply-accumulates) at 1024x2048."""
    model = DDRNetForSemanticSegmentation(DDRNetConfig.from_variant(variant))
    assert count_macs(model, 1024, 2048) / 1e9 == pytest.approx(gmacs, abs=0.05)


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
