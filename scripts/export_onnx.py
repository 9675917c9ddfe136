#!/usr/bin/env python
"""Export a DDRNet model to ONNX (opset 17+, dynamic batch and image size) and check it with onnxruntime.

The graph is the inference network: BatchNorm folded, no auxiliary head; it outputs logits at 1/8 resolution.

Example:
    python scripts/export_onnx.py --model_name_or_path outputs/ddrnet-23-slim/best_model --output ddrnet.onnx
"""

from __future__ import annotations

import argparse

import torch

from ddrnet_toolkit.cli import UserInputError, run_script
from ddrnet_toolkit.model_loading import load_trained_model
from ddrnet_toolkit.onnx_export import export_onnx, max_difference_with_onnxruntime


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
    if args.opset < 17:
        parser.error("--opset must be 17 or newer")
    model = load_trained_model(args.model_name_or_path)
    path = export_onnx(model, args.output, args.opset)
    check = torch.randn(2, model.config.num_channels, *args.check_size)
    difference, scale = max_difference_with_onnxruntime(model, path, check)
    print(
        f"wrote {path}; onnxruntime vs PyTorch on 2x3x{args.check_size[0]}x{args.check_size[1]}: "
        f"max |difference| {difference:.2e} (max |logit| {scale:.2e})"
    )
    if difference > args.tolerance * max(scale, 1.0):
        raise UserInputError(f"{path}: onnxruntime output differs beyond --tolerance {args.tolerance}")
    return 0


if __name__ == "__main__":
    run_script(main)
