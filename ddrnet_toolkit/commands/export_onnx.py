"""Export a DDRNet model to ONNX (opset 17+, dynamic batch and image size) and check it with onnxruntime.

The graph is the inference network: BatchNorm folded, no auxiliary head; it outputs logits at 1/8 resolution.
The file is written under a temporary name and renamed to --output only when onnxruntime agrees with PyTorch, so a
failed export leaves an existing file untouched.

With --int8, the fp32 graph is also quantized (onnxruntime static quantization: int8 weights per channel, uint8
activations whose ranges are measured on --num_calibration_images images of --calibration_split) and written next
to it, `model.onnx` -> `model.int8.onnx`, with the same input and output. Before anything is written, int8 and fp32
predictions are compared on the calibration images; beyond --max_label_disagreement (a fraction of their pixels)
neither file is written.
docs/int8.md gives the settings and why; scripts/benchmark.py --int8_model_name_or_path measures speed and mean IoU
before and after.

Examples:
    python scripts/export_onnx.py --model_name_or_path outputs/ddrnet-23-slim/best_model --output ddrnet.onnx
    python scripts/export_onnx.py --model_name_or_path M --output ddrnet.onnx --int8 \\
        --calibration_data_dir /data/cityscapes --calibration_split train --num_calibration_images 32
"""

from __future__ import annotations

import argparse
import math

from ..data.selection import load_dataset
from ..errors import UserInputError
from ..export.checked_export import ExportCheckError, Int8Calibration, export_checked, exported_files
from ..export.int8 import int8_path, spread_indices
from ..export.onnx import MIN_OPSET, max_supported_opset
from ..files import writable_file
from ..model_folder import check_not_a_model_file, load_trained_model
from .arguments import data_folder
from .runner import entry_point

# The suffix of each target's --output, and what it checks an export with.
OUTPUT_SUFFIX = {"onnx": ".onnx", "openvino": ".xml"}
CHECK_ENGINE = {"onnx": "onnxruntime", "openvino": "OpenVINO"}


def parse_export_args(argv: list[str] | None, target: str, description: str) -> argparse.Namespace:
    """The options of `ddrnet-export-onnx` and `ddrnet-export-openvino` (`target`)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True)
    parser.add_argument("--output", required=True, help=f"Path of the {OUTPUT_SUFFIX[target]} file.")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument(
        "--check_size",
        type=int,
        nargs=2,
        default=[256, 512],
        metavar=("H", "W"),
        help=f"Image size of the {CHECK_ENGINE[target]} check (any size works with the exported graph).",
    )
    parser.add_argument("--tolerance", type=float, default=1e-4, help="Allowed difference relative to max |logit|.")
    int8 = parser.add_argument_group("int8 graph")
    suffix = OUTPUT_SUFFIX[target]
    int8.add_argument("--int8", action="store_true", help=f"Also write the int8 graph, <output>.int8{suffix}.")
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
    if target == "openvino" and not args.output.endswith(suffix):
        parser.error(f"--output must end in {suffix} (the IR's weights go beside it, in .bin), got {args.output}")
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parse_export_args(argv, "onnx", __doc__)


def export(args: argparse.Namespace, target: str) -> int:
    """Run the export that `parse_export_args` parsed."""
    output = check_not_a_model_file(writable_file(args.output, "--output"), "--output")
    for path in exported_files(output, target)[:-1]:
        check_not_a_model_file(writable_file(path, "--output"), "--output")
    calibration = None
    if args.int8:  # every check of the int8 options before the model is loaded and exported
        for path in exported_files(int8_path(output), target):
            check_not_a_model_file(writable_file(path, "--output"), "--output")
        data_dir = data_folder(args.calibration_data_dir, "--calibration_data_dir")
        data = load_dataset(data_dir=data_dir, labels_file=args.labels_file, cache_dir=args.cache_dir)
        split = data.split(args.calibration_split, what="--calibration_split")
        indices = spread_indices(len(split), args.num_calibration_images)
        calibration = Int8Calibration(split, indices, args.calibration_split, args.max_label_disagreement)
    model = load_trained_model(args.model_name_or_path)
    try:
        check_size = tuple(args.check_size)
        report = export_checked(
            model,
            output,
            target=target,
            opset=args.opset,
            check_size=check_size,
            tolerance=args.tolerance,
            int8=calibration,
        )
    except ExportCheckError as error:
        raise UserInputError(f"--{error.bound} {getattr(args, error.bound)}: {error}") from error
    print(
        f"wrote {output}; {report.engine} vs PyTorch on 2x3x{args.check_size[0]}x{args.check_size[1]}: "
        f"max |difference| {report.difference:.2e} (max |logit| {report.scale:.2e})"
    )
    if report.agreement is not None:
        agreement = report.agreement
        line = (
            f"wrote {report.int8_path}; int8 vs fp32 on {agreement.num_images} {args.calibration_split} images: "
            f"labels differ on {agreement.disagreement:.2%} of the pixels"
        )
        if agreement.mean_iou_fp32 is not None and model.config.num_labels == data.label_space.num_labels:
            line += f", mean IoU {agreement.mean_iou_fp32:.2%} -> {agreement.mean_iou_int8:.2%}"
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    return export(parse_args(argv), "onnx")


cli = entry_point(main)


if __name__ == "__main__":
    cli()
