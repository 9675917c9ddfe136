"""int8 against fp32 on the CPU: speed of a trained model's graphs and the labels int8 changes."""

from __future__ import annotations

import tempfile

import datasets
import torch

from modeling_ddrnet import DDRNetForSemanticSegmentation

from ..export.int8 import Agreement, compare_predictions, quantize_int8, split_samples
from ..export.onnx import export_onnx
from ..inference.engines import OnnxRuntimeEngine
from .models import inference_step, onnxruntime_step, variant_name
from .timing import Measurement, best_times

INT8_TASK = "int8 comparison"


def measure_int8(
    model: DDRNetForSemanticSegmentation,
    calibration_split: datasets.Dataset,
    calibration_indices: list[int],
    eval_split: datasets.Dataset,
    batch: int,
    height: int,
    width: int,
    warmup: int,
    min_time: float,
    rounds: int = 2,
) -> tuple[list[Measurement], Agreement]:
    """A trained model on the CPU in fp32 (eager, and the fast path) and through onnxruntime (torch's thread count),
    fp32 and int8 (`quantize_int8` calibrated on the split's images at `calibration_indices`): speed at
    `batch`x3x`height`x`width`, all four interleaved, and the labels int8 changes on every image of `eval_split`.

    Returns the rows (task `INT8_TASK`) and the `Agreement` (mean IoU before and after, label disagreement).
    """

    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = export_onnx(model, f"{tmp}/model.onnx", sample_size=(height, width))
        calibration = split_samples(calibration_split, calibration_indices)
        int8_path = quantize_int8(fp32_path, f"{tmp}/model.int8.onnx", calibration)
        threads = torch.get_num_threads()
        fp32 = OnnxRuntimeEngine(fp32_path, model.config, threads)
        int8 = OnnxRuntimeEngine(int8_path, model.config, threads)
        agreement = compare_predictions(fp32, int8, split_samples(eval_split, range(len(eval_split))), model.config)
        steps = {mode: inference_step(model, mode, cpu, batch, height, width) for mode in ("fp32", "fast_path")}
        steps["onnxruntime"] = onnxruntime_step(fp32, batch, height, width)
        steps["onnxruntime int8"] = onnxruntime_step(int8, batch, height, width)
        best = best_times(steps, cpu, warmup, min_time, rounds)
    variant, shape = variant_name(model.config), f"{batch}x3x{height}x{width}"
    rows = [Measurement(INT8_TASK, variant, mode, "cpu", shape, best[mode], batch / best[mode]) for mode in steps]
    return rows, agreement


def int8_summary(rows: list[Measurement], agreement: Agreement, model: str, split: str) -> dict:
    """The int8 graph's speed ratios (from `measure_int8`'s rows) and accuracy change, as one JSON-ready dict."""
    seconds = {row.mode: row.seconds for row in rows if row.task == INT8_TASK}
    return {
        "model": model,
        "eval_split": split,
        "num_images": agreement.num_images,
        "mean_iou_fp32": agreement.mean_iou_fp32,
        "mean_iou_int8": agreement.mean_iou_int8,
        "label_disagreement": agreement.disagreement,
        "speedup_vs_onnxruntime_fp32": seconds["onnxruntime"] / seconds["onnxruntime int8"],
        "speedup_vs_eager_fp32": seconds["fp32"] / seconds["onnxruntime int8"],
    }


def int8_markdown(summary: dict) -> str:
    """`int8_summary` as a markdown table row with its header."""
    return "\n".join(
        [
            "| model | split | images | mIoU fp32 | mIoU int8 | change | labels changed | int8 vs onnxruntime fp32 "
            "| int8 vs eager fp32 |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {summary['model']} | {summary['eval_split']} | {summary['num_images']} | "
            f"{100 * summary['mean_iou_fp32']:.2f} | {100 * summary['mean_iou_int8']:.2f} | "
            f"{100 * (summary['mean_iou_int8'] - summary['mean_iou_fp32']):+.2f} | "
            f"{summary['label_disagreement']:.2%} | {summary['speedup_vs_onnxruntime_fp32']:.2f}x | "
            f"{summary['speedup_vs_eager_fp32']:.2f}x |",
        ]
    )
