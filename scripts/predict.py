#!/usr/bin/env python
"""Segment images with a DDRNet model and write colour masks, overlays and/or benchmark-server label maps.

Inputs are files, folders (searched recursively for .png/.jpg/.jpeg) or glob patterns. Outputs go to
<output_dir>/<format>/<folder>/<image stem>.png, where <folder> is the image's folder relative to the common parent
folder of all inputs (so cam_left/frame_1.png and cam_right/frame_1.png stay apart). Two inputs that would still
share an output (the same stem in one folder, e.g. a.png and a.jpg) are refused before anything is predicted.
Formats:
  color       the predicted mask in the colours of the model's dataset (its labels.json)
  overlay     the image blended with the colour mask
  cityscapes  8-bit Cityscapes *label ids* (not train ids), named after the input image, as the official
              benchmark server expects for a test-set submission (refused for a model whose classes are not the
              19 Cityscapes classes)

16-bit grayscale PNGs are scaled to 8 bits. An input that cannot be read (truncated, not an image, too large to
decode safely) stops the run with its name (--on_error stop, the default; outputs already written are kept), or
with --on_error skip is left out: the others are predicted, every skipped file is listed at the end, and the exit
status is 1.

Example:
    python scripts/predict.py --model_name_or_path outputs/ddrnet-23-slim/best_model \\
        --inputs "/data/cityscapes/leftImg8bit/test/*/*.png" --output_dir predictions --formats cityscapes
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from dataset_builders.cityscapes.labels import CLASS_NAMES, TRAIN_ID_TO_LABEL_ID
from ddrnet_toolkit.cli import UserInputError, run_script
from ddrnet_toolkit.data import normalize
from ddrnet_toolkit.images import (
    IMAGE_SUFFIXES,
    check_folder_creatable,
    image_size,
    read_rgb_image,
    save_png,
    writable_folder,
)
from ddrnet_toolkit.inference import add_inference_arguments, inference_options, predict_probabilities
from ddrnet_toolkit.model_loading import load_trained_model
from ddrnet_toolkit.visualization import colorize, model_palette, overlay

FORMATS = ("color", "overlay", "cityscapes")
SUFFIX_LIST = ", ".join(IMAGE_SUFFIXES)


def is_under(path: Path, folder: Path | None) -> bool:
    return folder is not None and path.resolve().is_relative_to(folder.resolve())


def find_images(inputs: list[str], exclude: Path | None = None) -> list[Path]:
    """Expand files, folders and globs into a sorted, duplicate-free list of image files.

    Files under `exclude` (the output folder) are not inputs, so that a second run does not predict predictions.
    """
    found: dict[Path, Path] = {}
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            matches = [
                p
                for p in path.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not is_under(p, exclude)
            ]
            if not matches:
                raise UserInputError(f"--inputs {item}: the folder holds no image ({SUFFIX_LIST})")
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise UserInputError(
                    f"--inputs {item}: not an image file this script reads (suffix {path.suffix or 'none'}; "
                    f"expected {SUFFIX_LIST}; videos must be split into frames first)"
                )
            matches = [path]
        else:
            matches = [
                Path(p)
                for p in glob.glob(item, recursive=True)
                if Path(p).suffix.lower() in IMAGE_SUFFIXES and Path(p).is_file() and not is_under(Path(p), exclude)
            ]
            if not matches:
                raise UserInputError(f"--inputs {item}: no such file, folder, or image matching this pattern")
        for match in sorted(matches):
            found.setdefault(match.resolve(), match)
    return list(found.values())


def output_names(paths: list[Path]) -> dict[Path, Path]:
    """Each input's output path under a format folder: its folder relative to the inputs' common parent, its stem.

    Raises `UserInputError` naming both inputs when two of them would be written to the same output.
    """
    if not paths:
        return {}
    resolved = [path.resolve() for path in paths]
    common = Path(os.path.commonpath([path.parent for path in resolved]))
    names = {path: real.relative_to(common).with_suffix(".png") for path, real in zip(paths, resolved, strict=True)}
    owners: dict[Path, Path] = {}
    for path, name in names.items():
        if name in owners:
            raise UserInputError(
                f"--inputs {owners[name]} and {path} would both be written to <format>/{name.as_posix()}: rename "
                "one of them or predict them in separate runs (nothing was predicted)"
            )
        owners[name] = path
    return names


def check_cityscapes_classes(model, where: str) -> None:
    """`--formats cityscapes` maps train ids 0..18 to Cityscapes label ids: only right for the Cityscapes classes."""
    config = model.config
    names = [str(config.id2label.get(index, config.id2label.get(str(index)))) for index in range(config.num_labels)]
    if names != list(CLASS_NAMES):
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise UserInputError(
            f"--formats cityscapes: the model in {where} predicts {config.num_labels} classes ({shown}), not the "
            f"{len(CLASS_NAMES)} Cityscapes classes in their order ({', '.join(CLASS_NAMES[:4])}, ...), so its "
            "Cityscapes label ids would be wrong; use --formats color overlay"
        )


def write_outputs(
    image: np.ndarray, prediction: np.ndarray, name: Path, output_dir: Path, formats, alpha: float, palette: np.ndarray
):
    outputs = {
        "color": lambda: colorize(prediction, palette),
        "overlay": lambda: overlay(image, prediction, alpha, palette),
        "cityscapes": lambda: TRAIN_ID_TO_LABEL_ID[prediction],
    }
    for format_name in formats:
        target = output_dir / format_name / name
        target.parent.mkdir(parents=True, exist_ok=True)
        save_png(outputs[format_name](), target)


def check_device(value: str, parser: argparse.ArgumentParser) -> None:
    if value == "auto":
        return
    try:
        device = torch.device(value)
    except RuntimeError:
        parser.error(f"--device {value}: not a device (use auto, cpu, cuda, cuda:1, ...)")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            parser.error(f"--device {value}: no CUDA GPU is available on this machine (use --device cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            parser.error(f"--device {value}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        parser.error(f"--device {value}: MPS is not available on this machine")
    elif device.type not in ("cpu", "cuda", "mps"):
        parser.error(f"--device {value}: unsupported device type (use auto, cpu, cuda, cuda:1, ...)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="Model folder (save_pretrained output).")
    parser.add_argument("--inputs", nargs="+", required=True, help="Image files, folders or glob patterns.")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=["color", "overlay"])
    parser.add_argument("--batch_size", type=int, default=4, help="Images of equal size per forward pass.")
    parser.add_argument("--device", default="auto", help="auto (GPU when available), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--on_error",
        choices=("stop", "skip"),
        default="stop",
        help="An unreadable input stops the run (default), or is skipped and reported at the end (exit status 1).",
    )
    add_inference_arguments(parser)
    parser.add_argument("--alpha", type=float, default=0.5, help="Mask opacity in overlays.")
    args = parser.parse_args(argv)
    args.inference = inference_options(args, parser)
    if args.batch_size < 1:
        parser.error("--batch_size must be at least 1")
    if not (math.isfinite(args.alpha) and 0 <= args.alpha <= 1):
        parser.error(f"--alpha must be between 0 and 1, got {args.alpha}")
    check_device(args.device, parser)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    paths = find_images(args.inputs, exclude=output_dir)
    names = output_names(paths)
    check_folder_creatable(output_dir, "--output_dir")
    for format_name in args.formats:
        check_folder_creatable(output_dir / format_name, "--output_dir")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    model = load_trained_model(args.model_name_or_path)
    palette = model_palette(args.model_name_or_path, model.config.id2label)
    if "cityscapes" in args.formats:
        check_cityscapes_classes(model, args.model_name_or_path)
    model = model.to(device)

    failures: dict[Path, str] = {}
    by_size: dict[tuple[int, int], list[Path]] = defaultdict(list)
    for path in paths:
        try:
            by_size[image_size(path)].append(path)
        except UserInputError as error:
            failures[path] = str(error)
    if failures and args.on_error == "stop":
        shown = "; ".join(list(failures.values())[:5])
        if len(failures) > 5:
            shown += f"; and {len(failures) - 5} more"
        raise UserInputError(f"{len(failures)} of {len(paths)} input(s) cannot be read, nothing was predicted: {shown}")
    for format_name in args.formats:
        writable_folder(output_dir / format_name, "--output_dir")

    written = 0
    batches = [
        group[i : i + args.batch_size] for group in by_size.values() for i in range(0, len(group), args.batch_size)
    ]
    with tqdm(total=len(paths) - len(failures), desc="predicting", unit="image") as progress:
        for batch in batches:
            batch_paths, images = [], []
            for path in batch:
                try:
                    images.append(read_rgb_image(path))
                    batch_paths.append(path)
                except UserInputError as error:
                    if args.on_error == "stop":
                        kept = f"the {written} prediction(s) already written to {output_dir} are kept"
                        raise UserInputError(f"{error} (stopped; {kept})") from error
                    failures[path] = str(error)
                    progress.update(1)
            if not batch_paths:
                continue
            pixel_values = torch.from_numpy(np.stack([normalize(image) for image in images])).to(device)
            probabilities = predict_probabilities(
                model, pixel_values, **args.inference, align_corners=model.config.align_corners
            )
            predictions = probabilities.argmax(dim=1).byte().cpu().numpy()
            for path, image, prediction in zip(batch_paths, images, predictions, strict=True):
                write_outputs(image, prediction, names[path], output_dir, args.formats, args.alpha, palette)
                written += 1
            progress.update(len(batch_paths))
    print(f"wrote {written} prediction(s) per format to {output_dir}/{{{','.join(args.formats)}}}")
    if failures:
        for message in failures.values():
            print(f"skipped: {message}", file=sys.stderr)
        raise UserInputError(f"skipped {len(failures)} of {len(paths)} input(s) that cannot be read (listed above)")
    return 0


if __name__ == "__main__":
    run_script(main)
