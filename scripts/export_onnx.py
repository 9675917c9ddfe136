#!/usr/bin/env python
"""Export a DDRNet model to ONNX (opset 17+, dynamic batch and image size) and check it with onnxruntime.

The graph is the inference network: BatchNorm folded, no auxiliary head; it outputs logits at 1/8 resolution.
The file is written under a temporary name and renamed to --output only when onnxruntime agrees with PyTorch, so a
failed export leaves an existing file untouched.

With --int8, the fp32 graph is also quantized (onnxruntime static quantization: int8 weights per channel, uint8
activations whose ranges are measured on --num_calibration_images images of --calibration_split) and written next
to it, `model.onnx` -> `model.int8.onnx`, with the same input and output. Before anything is written, int8 and fp32
predictions are compared on the calibration images; beyond --max_label_disagreement (a fraction of their pixels)
neither file is written. On the synthetic-Cityscapes DDRNet-23-slim, on 2 cores with AVX-512 VNNI, the int8 graph
runs 2.1x as fast as the fp32 one (logits upsampled to the image included; 2.5x the graph alone) and changes 0.6%
of the validation labels, mean IoU 57.76 -> 57.74 (ddrnet_toolkit/quantization.py gives the settings and why;
scripts/benchmark.py --int8_model_name_or_path measures speed and mean IoU before and after).

Examples:
    python scripts/export_onnx.py --model_name_or_path outputs/ddrnet-23-slim/best_model --output ddrnet.onnx
    python scripts/export_onnx.py --model_name_or_path M --output ddrnet.onnx --int8 \\
        --calibration_data_dir /data/cityscapes --calibration_split train --num_calibration_images 32
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from ddrnet_toolkit.cli import UserInputError, run_script
from ddrnet_toolkit.images import replace_atomically, writable_file
from ddrnet_toolkit.model_loading import load_trained_model
from ddrnet_toolkit.onnx_export import (
    MIN_OPSET,
    OnnxRuntimeLogits,
    export_onnx,
    max_difference_with_onnxruntime,
    max_supported_opset,
)
from ddrnet_toolkit.quantization import (
    compare_predictions,
    int8_path,
    load_image_dataset,
    quantize_int8,
    select_split,
    split_samples,
    spread_indices,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    int8 = parser.add_argument_group("int8 graph")
    int8.add_argument("--int8", action="store_true", help="Also write the int8 graph, <output>.int8.onnx.")
    int8.add_argument(
        "--calibration_data_dir",
        default=None,
        help="Dataset whose images calibrate the int8 activations: a Cityscapes folder, or a folder of .lst split "
        "files with --labels_file.",
    )
    int8.add_argument(
        "--calibration_split",
        default="train",
        help="Split of the calibration images (default: train, keeping validation for the before/after mIoU).",
    )
    int8.add_argument(
        "--num_calibration_images", type=int, default=32, help="Images spread evenly over the split (default: 32)."
    )
    int8.add_argument("--labels_file", default=None, help="Classes file of a dataset other than Cityscapes.")
    int8.add_argument("--cache_dir", default=None, help="datasets cache folder.")
    int8.add_argument(
        "--max_label_disagreement",
        type=float,
        default=0.05,
        help="Write nothing when int8 and fp32 predict different labels on more than this fraction of the "
        "calibration images' pixels (default: 0.05).",
    )
    args = parser.parse_args(argv)
    newest = max_supported_opset()
    if not MIN_OPSET <= args.opset <= newest:
        parser.error(f"--opset must be between {MIN_OPSET} and {newest} (the newest the installed torch exports)")
    if min(args.check_size) < 1:
        parser.error(f"--check_size must be positive, got {args.check_size[0]} {args.check_size[1]}")
    if not (math.isfinite(args.tolerance) and args.tolerance >= 0):
        parser.error(f"--tolerance must be a non-negative number, got {args.tolerance}")
    if args.int8 != (args.calibration_data_dir is not None):
        parser.error("--int8 and --calibration_data_dir go together: int8 activations are calibrated on images")
    if args.num_calibration_images < 1:
        parser.error(f"--num_calibration_images must be at least 1, got {args.num_calibration_images}")
    if not 0 <= args.max_label_disagreement <= 1:
        parser.error(f"--max_label_disagreement must be between 0 and 1, got {args.max_label_disagreement}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    output = writable_file(args.output, "--output")
    if args.int8:  # every check of the int8 options before the model is loaded and exported
        int8_output = writable_file(int8_path(output), "--output")
        data = load_image_dataset(args.calibration_data_dir, args.labels_file, args.cache_dir, "--calibration_data_dir")
        split = select_split(data, args.calibration_split, "--calibration_split")
        indices = spread_indices(len(split), args.num_calibration_images)
    model = load_trained_model(args.model_name_or_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    check = torch.randn(2, model.config.num_channels, *args.check_size)
    measured = {}

    def write_int8(fp32: Path, temporary: Path) -> None:
        quantize_int8(fp32, temporary, split_samples(split, indices))
        fp32_model, int8_model = OnnxRuntimeLogits(fp32), OnnxRuntimeLogits(temporary)
        agreement = compare_predictions(fp32_model, int8_model, split_samples(split, indices), model.config)
        measured["agreement"] = agreement
        if agreement.disagreement > args.max_label_disagreement:
            raise UserInputError(
                f"--max_label_disagreement {args.max_label_disagreement}: int8 and fp32 predict different labels "
                f"on {agreement.disagreement:.2%} of the pixels of {len(indices)} {args.calibration_split} images; "
                "nothing was written"
            )

    def write_and_check(temporary: Path) -> None:
        export_onnx(model, temporary, args.opset)
        difference, scale = max_difference_with_onnxruntime(model, temporary, check)
        measured.update(difference=difference, scale=scale)
        if difference > args.tolerance * max(scale, 1.0):
            raise UserInputError(
                f"--output {output}: onnxruntime output differs from PyTorch by {difference:.2e} (max |logit| "
                f"{scale:.2e}), beyond --tolerance {args.tolerance}; nothing was written"
            )
        if args.int8:  # written first, so that a refused int8 graph leaves the fp32 file untouched too
            replace_atomically(int8_output, lambda int8_temporary: write_int8(temporary, int8_temporary))

    replace_atomically(output, write_and_check)
    print(
        f"wrote {output}; onnxruntime vs PyTorch on 2x3x{args.check_size[0]}x{args.check_size[1]}: "
        f"max |difference| {measured['difference']:.2e} (max |logit| {measured['scale']:.2e})"
    )
    if args.int8:
        agreement = measured["agreement"]
        line = (
            f"wrote {int8_output}; int8 vs fp32 on {agreement.num_images} {args.calibration_split} images: labels "
            f"differ on {agreement.disagreement:.2%} of the pixels"
        )
        if agreement.mean_iou_fp32 is not None and model.config.num_labels == data.label_space.num_labels:
            line += f", mean IoU {agreement.mean_iou_fp32:.2%} -> {agreement.mean_iou_int8:.2%}"
        print(line)
    return 0


if __name__ == "__main__":
    run_script(main)
