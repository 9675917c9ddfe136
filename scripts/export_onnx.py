#!/usr/bin/env python
"""Export a DDRNet model to ONNX (opset 17+, dynamic batch and image size) and check it with onnxruntime.

The graph is the inference network: BatchNorm folded, no auxiliary head; it outputs logits at 1/8 resolution.
The file is written under a temporary name and renamed to --output only when onnxruntime agrees with PyTorch, so a
failed export leaves an existing file untouched.

Example:
    python scripts/export_onnx.py --model_name_or_path outputs/ddrnet-23-slim/best_model --output ddrnet.onnx
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from ddrnet_toolkit.cli import UserInputError, run_script
from ddrnet_toolkit.images import replace_atomically, writable_file
from ddrnet_toolkit.model_loading import load_trained_model
from ddrnet_toolkit.onnx_export import MIN_OPSET, export_onnx, max_difference_with_onnxruntime, max_supported_opset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True)
    parser.add_argument("--output", required=True, help="Path of the .onnx file.")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument(
        "--check_size",
        type=int,
        nargs=2,
        default=[256, 512],
        metavar=("H", "W"),
        help="Image size of the onnxruntime check (any size works with the exported graph).",
    )
    parser.add_argument("--tolerance", type=float, default=1e-4, help="Allowed difference relative to max |logit|.")
    args = parser.parse_args(argv)
    newest = max_supported_opset()
    if not MIN_OPSET <= args.opset <= newest:
        parser.error(f"--opset must be between {MIN_OPSET} and {newest} (the newest the installed torch exports)")
    if min(args.check_size) < 1:
        parser.error(f"--check_size must be positive, got {args.check_size[0]} {args.check_size[1]}")
    if not (math.isfinite(args.tolerance) and args.tolerance >= 0):
        parser.error(f"--tolerance must be a non-negative number, got {args.tolerance}")
    output = writable_file(args.output, "--output")
    model = load_trained_model(args.model_name_or_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    check = torch.randn(2, model.config.num_channels, *args.check_size)
    measured = {}

    def write_and_check(temporary: Path) -> None:
        export_onnx(model, temporary, args.opset)
        difference, scale = max_difference_with_onnxruntime(model, temporary, check)
        measured.update(difference=difference, scale=scale)
        if difference > args.tolerance * max(scale, 1.0):
            raise UserInputError(
                f"--output {output}: onnxruntime output differs from PyTorch by {difference:.2e} (max |logit| "
                f"{scale:.2e}), beyond --tolerance {args.tolerance}; nothing was written"
            )

    replace_atomically(output, write_and_check)
    print(
        f"wrote {output}; onnxruntime vs PyTorch on 2x3x{args.check_size[0]}x{args.check_size[1]}: "
        f"max |difference| {measured['difference']:.2e} (max |logit| {measured['scale']:.2e})"
    )
    return 0


if __name__ == "__main__":
    run_script(main)
