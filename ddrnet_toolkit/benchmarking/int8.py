"""Every CPU engine on a trained model, fp32 and int8: speed, the multiply-accumulates per second they achieve
against the CPU's peak, and the labels and mean IoU each changes against the PyTorch model."""

from __future__ import annotations

from dataclasses import dataclass

import datasets
import torch
from torch import nn

from modeling_ddrnet import DDRNetForSemanticSegmentation
from modeling_ddrnet.fast_inference import prepare_for_inference

from ..export.int8 import CalibrationImages, compare_predictions, quantize_int8
from ..export.onnx import export_onnx
from ..inference.engines import Engine, OnnxRuntimeEngine, OpenVinoEngine, PyTorchEngine
from .models import inference_step, onnxruntime_step, variant_name
from .timing import Measurement, best_times

INT8_TASK = "engines"
# Multiply-accumulates per 32-bit lane of one vector instruction, in the slot of one fp32 FMA: VNNI's vpdpbusd
# does 4 of int8, AVX-512 BF16's vdpbf16ps 2 of bf16.
MACS_PER_FP32_MAC = {"fp32": 1, "bf16": 2, "int8": 4}


@dataclass
class EngineResult:
    """One engine's row of the comparison."""

    mode: str
    precision: str  # fp32, bf16 or int8: the peak it is held to
    seconds: float  # per batch
    images_per_second: float
    gmacs: float  # multiply-accumulates per second, in billions
    peak_share: float  # of the CPU's peak in its precision
    mean_iou: float
    mean_iou_pytorch: float
    disagreement: float  # share of the evaluation pixels whose label differs from PyTorch's


def count_macs(model: DDRNetForSemanticSegmentation, height: int, width: int) -> int:
    """Multiply-accumulates of the inference network (BatchNorm folded, no auxiliary head) on one
    `height`x`width` image: every convolution's output elements times its inputs per output."""
    total = 0

    def count(module: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * module.in_channels // module.groups * kernel

    network = prepare_for_inference(model, channels_last=False)
    hooks = [m.register_forward_hook(count) for m in network.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        network(torch.zeros(1, model.config.num_channels, height, width))
    for hook in hooks:
        hook.remove()
    return total


# The SGEMM whose speed is the fp32 peak, timed with the engines.
PEAK_STEP = "sgemm"


def sgemm_step(size: int = 2048):
    """A closure multiplying two `size`x`size` fp32 matrices (oneDNN/MKL SGEMM on torch's threads, which runs at the
    FMA units' limit), and the multiply-accumulates it does."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return (lambda: torch.mm(a, b)), size**3


def openvino_installed() -> bool:
    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def exported_engines(
    model: DDRNetForSemanticSegmentation, calibration: CalibrationImages, folder: str, height: int, width: int
) -> dict[str, tuple[Engine, str]]:
    """The exported engines of `model` (written to `folder`), each with its precision: onnxruntime fp32 and int8,
    and where OpenVINO is installed, OpenVINO fp32 (f32, as the engine runs it; and OpenVINO's own precision
    choice: bf16 on CPUs that have it) and int8 (NNCF)."""
    threads = torch.get_num_threads()
    fp32_path = export_onnx(model, f"{folder}/model.onnx", sample_size=(height, width))
    int8_path = quantize_int8(fp32_path, f"{folder}/model.int8.onnx", calibration)
    engines = {
        "onnxruntime": (OnnxRuntimeEngine(fp32_path, model.config, threads), "fp32"),
        "onnxruntime int8": (OnnxRuntimeEngine(int8_path, model.config, threads), "int8"),
    }
    if openvino_installed():
        from ..export.openvino import convert_onnx, quantize_openvino

        fp32 = convert_onnx(fp32_path)
        engines["openvino"] = (OpenVinoEngine(fp32, model.config, threads), "fp32")
        default = OpenVinoEngine(fp32, model.config, threads, precision=None)
        engines["openvino, OpenVINO's precision choice"] = (default, "bf16" if default.precision == "bf16" else "fp32")
        int8 = quantize_openvino(fp32, calibration)
        engines["openvino int8"] = (OpenVinoEngine(int8, model.config, threads), "int8")
    return engines


def measure_int8(
    model: DDRNetForSemanticSegmentation,
    engines: dict[str, tuple[Engine, str]],
    eval_split: datasets.Dataset,
    batch: int,
    height: int,
    width: int,
    warmup: int,
    min_time: float,
    rounds: int = 2,
) -> tuple[list[Measurement], list[EngineResult], float]:
    """A trained model on the CPU through every engine: PyTorch fp32 (eager, and the fast path) and the
    `exported_engines`, timed at `batch`x3x`height`x`width`, all interleaved, threads as torch's; the labels and
    mean IoU of every image of `eval_split` against the PyTorch model's.

    The CPU's fp32 peak is the speed of an SGEMM (`sgemm_step`) timed with them, in the same rounds.
    Returns the timing rows (task `INT8_TASK`), one `EngineResult` per engine, and that peak in GMAC/s.
    """
    cpu = torch.device("cpu")
    evaluation = CalibrationImages(eval_split, range(len(eval_split)))
    pytorch = PyTorchEngine(model)
    agreements = {
        name: compare_predictions(pytorch, engine, evaluation, model.config) for name, (engine, _) in engines.items()
    }
    steps = {mode: inference_step(model, mode, cpu, batch, height, width) for mode in ("fp32", "fast_path")}
    steps.update({name: onnxruntime_step(engine, batch, height, width) for name, (engine, _) in engines.items()})
    steps[PEAK_STEP], peak_macs = sgemm_step()
    best = best_times(steps, cpu, warmup, min_time, rounds)
    peak = peak_macs / best.pop(PEAK_STEP) / 1e9
    del steps[PEAK_STEP]
    variant, shape = variant_name(model.config), f"{batch}x3x{height}x{width}"
    rows = [Measurement(INT8_TASK, variant, mode, "cpu", shape, best[mode], batch / best[mode]) for mode in steps]
    macs = count_macs(model, height, width) * batch
    reference = next(iter(agreements.values()))
    precisions = {"fp32": "fp32", "fast_path": "fp32"} | {name: precision for name, (_, precision) in engines.items()}
    results = []
    for mode, precision in precisions.items():
        agreement = agreements.get(mode)
        gmacs = macs / best[mode] / 1e9
        results.append(
            EngineResult(
                mode,
                precision,
                best[mode],
                batch / best[mode],
                gmacs,
                gmacs / (peak * MACS_PER_FP32_MAC[precision]),
                reference.mean_iou_fp32 if agreement is None else agreement.mean_iou_int8,
                reference.mean_iou_fp32,
                0.0 if agreement is None else agreement.disagreement,
            )
        )
    return rows, results, peak


def int8_summary(results: list[EngineResult], model: str, split: str, num_images: int, peak: float) -> dict:
    """`measure_int8`'s results as one JSON-ready dict."""
    return {
        "model": model,
        "eval_split": split,
        "num_images": num_images,
        "fp32_peak_gmacs": peak,
        "engines": [vars(result) for result in results],
    }


def int8_markdown(summary: dict) -> str:
    """`int8_summary` as a markdown table: per engine, speed, GMAC/s and share of the peak, mean IoU and labels
    changed against PyTorch."""
    eager = next(e["images_per_second"] for e in summary["engines"] if e["mode"] == "fp32")
    lines = [
        f"{summary['model']}, mean IoU on {summary['num_images']} {summary['eval_split']} images; fp32 peak "
        f"{summary['fp32_peak_gmacs']:.0f} GMAC/s (best SGEMM), bf16 and int8 peaks 2x and 4x that (AVX-512 BF16, "
        "VNNI); beyond 100%: fewer multiplications than a direct convolution (Winograd)",
        "",
        "| engine | precision | images/s | vs eager fp32 | GMAC/s | of peak | mIoU | change | labels changed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in summary["engines"]:
        speed = e["images_per_second"]
        lines.append(
            f"| {e['mode']} | {e['precision']} | {speed:.2f} | {speed / eager:.2f}x | "
            f"{e['gmacs']:.0f} | {e['peak_share']:.0%} | {100 * e['mean_iou']:.2f} | "
            f"{100 * (e['mean_iou'] - e['mean_iou_pytorch']):+.2f} | {e['disagreement']:.2%} |"
        )
    return "\n".join(lines)
