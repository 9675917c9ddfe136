"""The GPU check: everything a GPU changes, exercised on the best device present in one command, reported as one
table (date, device, torch/CUDA/cuDNN versions) and written to <output_dir>/gpu_check.{md,json}.

Sections: inference modes (fp32, fp16/bf16 autocast, channels_last, the fast path, CUDA graphs on CUDA), a
training-step table per precision with channels_last and peak memory, a real `accelerate launch` training per
precision on a synthetic Cityscapes (finite losses, skipped steps, images/s, mIoU of each), whether training waits
for data, evaluation (single scale, ms+flip, sliding window) and prediction in fp32 and under autocast, the predict
command, a pushed demo app, two processes with SyncBatchNorm (two GPUs or more), onnxruntime, and torch.compile of
inference and training (last: compiling takes the longest). At the paper's sizes on one GPU it takes about five
minutes; `--quick` runs the same code at tiny sizes (a CPU in about two). A section whose packages are missing is
skipped with the `pip install` that adds them; one that breaks is an `error` row (its traceback in errors.log) and
the others still run. The exit status is 1 when any check failed.

Examples:
    python scripts/gpu_check.py                      # the best device present, the paper's sizes
    python scripts/gpu_check.py --quick              # the same code paths at tiny sizes
    python scripts/gpu_check.py --skip compile onnxruntime --work_dir /tmp/gpu-check
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

# The check never needs the network, and the GPU machines it is for often have none: no library may try the Hub
# (they read these when imported; the training runs inherit them).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from ..benchmarking.gpu_check import FULL, QUICK, SECTION_NAMES, run_gpu_check  # noqa: E402
from ..benchmarking.timing import enable_cudnn_autotuning  # noqa: E402
from ..devices import resolve_device  # noqa: E402
from ..errors import UserInputError  # noqa: E402
from ..files import writable_folder  # noqa: E402
from .runner import entry_point  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="Tiny sizes: the same code paths in minutes on a CPU.")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: the GPU if any.")
    parser.add_argument("--output_dir", default="outputs/gpu-check", help="Where gpu_check.{md,json} and logs go.")
    parser.add_argument(
        "--work_dir",
        default=None,
        help="Keep the synthetic data and the runs here, and reuse the data on the next check (default: a temporary "
        "folder, removed).",
    )
    sections = parser.add_mutually_exclusive_group()
    sections.add_argument("--sections", nargs="+", choices=SECTION_NAMES, default=None, help="Only these.")
    sections.add_argument("--skip", nargs="+", choices=SECTION_NAMES, default=[], help="All but these.")
    args = parser.parse_args(argv)
    try:
        args.device = resolve_device(args.device)
    except UserInputError as error:
        parser.error(f"--device {error}")
    args.sections = tuple(name for name in (args.sections or SECTION_NAMES) if name not in args.skip)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    output_dir = writable_folder(args.output_dir, "--output_dir")
    enable_cudnn_autotuning(args.device)
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="ddrnet-gpu-check-") as temporary:
        work_dir = writable_folder(args.work_dir, "--work_dir") if args.work_dir else Path(temporary)
        report = run_gpu_check(args.device, sizes, output_dir, work_dir, args.sections)
    markdown, data = report.write(output_dir)
    print(f"\n{report.header()}\n\n{report.markdown()}\n\nwrote {markdown} and {data}", flush=True)
    failures = report.failures()
    if failures:
        names = "; ".join(f"{row.section}: {row.case} ({row.status})" for row in failures)
        raise UserInputError(f"{len(failures)} check(s) failed: {names}; see {markdown}")
    return 0


cli = entry_point(main)


if __name__ == "__main__":
    cli()
