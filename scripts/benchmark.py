#!/usr/bin/env python
"""Speed report: inference per variant and mode, training steps, the data pipeline and the metric, in one run.

Inference is timed the paper's way (batch 1, 1024x2048, eval mode, logits upsampled to the input, warm-up, then
enough iterations for over a second between device synchronizations). Modes: fp32 eager; amp (fp16 autocast on
GPUs, bf16 on CPUs); channels_last; both; torch.compile; the fast path (BatchNorm folded, no aux head, NHWC),
in fp32 and with amp; onnxruntime (CPU). Training: a full step with the loss at 1024x1024, batch 8. Every speed-up
is a ratio to the eager fp32 row measured in the same run. Data: the training pipeline's images per second per
worker, previous and current side by side, and through DataLoaders of 1 and 2 workers (see benchmark_data.py).

Examples:
    python scripts/benchmark.py --device cuda                       # the paper's setting, all variants
    python scripts/benchmark.py --preset cpu-small                  # a few minutes on a small CPU machine
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from ddrnet_toolkit.benchmarking import (
    INFERENCE_MODES,
    TRAINING_MODES,
    add_speedups,
    as_dicts,
    markdown_table,
    measure_data_pipeline,
    measure_inference,
    measure_metric,
    measure_onnxruntime,
    measure_training,
)
from ddrnet_toolkit.cli import run_script
from modeling_ddrnet import VARIANTS

PRESETS = {
    "paper": {},
    "cpu-small": {
        "variants": ["ddrnet-23-slim"],
        "height": 256,
        "width": 512,
        "train_crop": 256,
        "train_batch_size": 2,
        "modes": ["fp32", "channels_last", "fast_path", "fast_path_compile"],
        "train_modes": ["fp32", "channels_last"],
        "data_height": 512,
        "data_width": 1024,
        "min_time": 0.5,
        "warmup": 2,
        "metric_height": 512,
        "metric_width": 1024,
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(PRESETS), default="paper", help="Defaults for the options below.")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda.")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=INFERENCE_MODES,
        default=None,
        help="Inference modes (default: all; compile only on GPUs).",
    )
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--train_modes", nargs="+", choices=TRAINING_MODES, default=list(TRAINING_MODES))
    parser.add_argument("--train_batch_size", type=int, default=8)
    parser.add_argument("--train_crop", type=int, default=1024)
    parser.add_argument("--data_height", type=int, default=1024)
    parser.add_argument("--data_width", type=int, default=2048)
    parser.add_argument("--metric_height", type=int, default=1024)
    parser.add_argument("--metric_width", type=int, default=2048)
    parser.add_argument(
        "--skip", nargs="+", default=[], choices=["inference", "onnxruntime", "training", "data", "metric"]
    )
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--min_time", type=float, default=1.0, help="Seconds per timed run.")
    parser.add_argument("--output_dir", default="outputs/benchmark", help="Where results.json and results.md go.")
    preset = parser.parse_known_args(argv)[0].preset
    parser.set_defaults(**PRESETS[preset])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    modes = args.modes or [m for m in INFERENCE_MODES if "compile" not in m or device.type == "cuda"]
    rows = []
    for variant in args.variants:
        if "inference" not in args.skip:
            rows += measure_inference(
                variant, modes, device, args.batch_size, args.height, args.width, args.warmup, args.min_time
            )
        if "onnxruntime" not in args.skip:
            rows.append(
                measure_onnxruntime(variant, args.batch_size, args.height, args.width, args.warmup, args.min_time)
            )
        if "training" not in args.skip:
            rows += measure_training(
                variant, args.train_modes, device, args.train_batch_size, args.train_crop, args.warmup, args.min_time
            )
        print(markdown_table([r for r in rows if r.variant == variant]), flush=True)
    if "data" not in args.skip:
        rows += measure_data_pipeline(height=args.data_height, width=args.data_width, crop=args.train_crop)
    if "metric" not in args.skip:
        rows += measure_metric(height=args.metric_height, width=args.metric_width, min_time=args.min_time)
    add_speedups(rows)

    header = (
        f"Benchmark {time.strftime('%Y-%m-%d')}, {device_name}, torch {torch.__version__}, "
        f"cudnn.benchmark={device.type == 'cuda'}"
    )
    table = markdown_table(rows)
    print(f"\n{header}\n\n{table}")
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "results.md").write_text(f"{header}\n\n{table}\n")
    (output_dir / "results.json").write_text(json.dumps({"header": header, "rows": as_dicts(rows)}, indent=2) + "\n")
    print(f"\nwrote {output_dir / 'results.md'} and {output_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    run_script(main)
