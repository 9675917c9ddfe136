#!/usr/bin/env python
"""Segment images with a DDRNet model and write colour masks, overlays and/or benchmark-server label maps.

Inputs are files, folders (searched recursively for .png/.jpg/.jpeg) or glob patterns. Outputs go to
<output_dir>/<format>/<image stem>.png:
  color       the predicted mask in the Cityscapes palette
  overlay     the image blended with the colour mask
  cityscapes  8-bit Cityscapes *label ids* (not train ids), named after the input image, as the official
              benchmark server expects for a test-set submission

Example:
    python scripts/predict.py --model_name_or_path outputs/ddrnet-23-slim/best_model \\
        --inputs "/data/cityscapes/leftImg8bit/test/*/*.png" --output_dir predictions --formats cityscapes
"""

from __future__ import annotations

import argparse
import glob
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from dataset_builders.cityscapes.labels import TRAIN_ID_TO_LABEL_ID
from ddrnet_toolkit.cli import UserInputError, run_script
from ddrnet_toolkit.data import normalize
from ddrnet_toolkit.inference import add_inference_arguments, inference_options, predict_probabilities
from ddrnet_toolkit.model_loading import load_trained_model
from ddrnet_toolkit.visualization import colorize, overlay

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
FORMATS = ("color", "overlay", "cityscapes")


def find_images(inputs: list[str]) -> list[Path]:
    """Expand files, folders and globs into a sorted, duplicate-free list of image files."""
    found: dict[Path, None] = {}
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            matches = [p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
        elif path.is_file():
            matches = [path]
        else:
            matches = [Path(p) for p in glob.glob(item, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES]
            if not matches:
                raise UserInputError(f"--inputs {item}: no such file, folder, or image matching this pattern")
        for match in sorted(matches):
            found[match] = None
    return list(found)


def write_outputs(image: np.ndarray, prediction: np.ndarray, stem: str, output_dir: Path, formats, alpha: float):
    outputs = {
        "color": lambda: colorize(prediction),
        "overlay": lambda: overlay(image, prediction, alpha),
        "cityscapes": lambda: TRAIN_ID_TO_LABEL_ID[prediction],
    }
    for name in formats:
        (output_dir / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(outputs[name]()).save(output_dir / name / f"{stem}.png")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="Model folder (save_pretrained output).")
    parser.add_argument("--inputs", nargs="+", required=True, help="Image files, folders or glob patterns.")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=["color", "overlay"])
    parser.add_argument("--batch_size", type=int, default=4, help="Images of equal size per forward pass.")
    parser.add_argument("--device", default="auto", help="auto (GPU when available), cpu, cuda, cuda:1, ...")
    add_inference_arguments(parser)
    parser.add_argument("--alpha", type=float, default=0.5, help="Mask opacity in overlays.")
    args = parser.parse_args(argv)
    args.inference = inference_options(args, parser)
    if args.batch_size < 1:
        parser.error("--batch_size must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    paths = find_images(args.inputs)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    model = load_trained_model(args.model_name_or_path).to(device)
    output_dir = Path(args.output_dir)

    by_size: dict[tuple[int, int], list[Path]] = defaultdict(list)
    for path in paths:
        with Image.open(path) as image:
            by_size[image.size].append(path)
    progress = tqdm(total=len(paths), desc="predicting", unit="image")
    for same_size in by_size.values():
        for start in range(0, len(same_size), args.batch_size):
            batch_paths = same_size[start : start + args.batch_size]
            images = [np.asarray(Image.open(path).convert("RGB")) for path in batch_paths]
            pixel_values = torch.from_numpy(np.stack([normalize(image) for image in images])).to(device)
            probabilities = predict_probabilities(
                model, pixel_values, **args.inference, align_corners=model.config.align_corners
            )
            predictions = probabilities.argmax(dim=1).byte().cpu().numpy()
            for path, image, prediction in zip(batch_paths, images, predictions, strict=True):
                write_outputs(image, prediction, path.stem, output_dir, args.formats, args.alpha)
            progress.update(len(batch_paths))
    progress.close()
    print(f"wrote {len(paths)} prediction(s) per format to {output_dir}/{{{','.join(args.formats)}}}")
    return 0


if __name__ == "__main__":
    run_script(main)
