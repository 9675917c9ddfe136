#!/usr/bin/env python
"""Segment images, image sequences and videos with a DDRNet model; write colour masks, overlays and/or label maps.

Inputs are files, folders (searched recursively for .png/.jpg/.jpeg images and .mp4/.avi/.mov/.mkv videos) or glob
patterns. Outputs keep each input's folder relative to the common parent folder of all the images (or of all the
videos and sequences), so cam_left/frame_1.png and cam_right/frame_1.png stay apart. Two inputs that would still
share an output (the same stem in one folder, e.g. a.png and a.jpg, or a.mp4 and a.mkv) are refused before anything
is predicted.

Images go to <output_dir>/<format>/<folder>/<image stem>.png for each of --formats:
  color       the predicted mask in the colours of the model's dataset (its labels.json)
  overlay     the image blended with the colour mask
  cityscapes  8-bit Cityscapes *label ids* (not train ids), named after the input image, as the official
              benchmark server expects for a test-set submission (refused for a model whose classes are not the
              19 Cityscapes classes)

Videos are decoded with PyAV (FFmpeg) and predicted --batch_size frames at a time, never held whole in memory. A
video <folder>/<stem>.mp4 (or .avi, .mov, .mkv) goes to <output_dir>/video/<format>/<folder>/ for each of
--video_formats:
  overlay     <stem>.mp4: the frames blended with the colour mask, at the input's size and average frame rate
  color       <stem>.mp4: the colour masks
  labels      <stem>/frame_000000.png, frame_000001.png, ...: 8-bit class indices of the model (train ids for a
              Cityscapes model, not the benchmark's label ids)
With --sequence_fps FPS, the images of each folder are instead the frames of one video at FPS frames per second,
ordered by file name (numbers compared as numbers: frame_2 before frame_10); the folder <folder>/<name> goes to
<output_dir>/video/<format>/<folder>/<name>.mp4 (labels: .../<name>/frame_000000.png, ...).
Videos are written as MP4, H.264 (MPEG-4 Part 2 where PyAV lacks libx264) in yuv420p: an odd width or height gets one
more column or row, a copy of the edge. A video or folder of frames is complete or absent: it is written under a
temporary name and renamed when done.

16-bit grayscale PNGs are scaled to 8 bits. An input that cannot be read (a truncated image or video, a file that is
not an image or cannot be decoded as a video, an image too large to decode safely, a sequence frame of another size)
stops the run with its name (--on_error stop, the default; outputs already written are kept), or with --on_error
skip is left out (an unreadable frame leaves out its whole sequence): the others are predicted, every skipped input
is listed at the end, and the exit status is 1.

Examples:
    python scripts/predict.py --model_name_or_path outputs/ddrnet-23-slim/best_model \\
        --inputs "/data/cityscapes/leftImg8bit/test/*/*.png" --output_dir predictions --formats cityscapes
    python scripts/predict.py --model_name_or_path outputs/ddrnet-23-slim/best_model \\
        --inputs clips/drive.mp4 --output_dir predictions --video_formats overlay labels
    python scripts/predict.py --model_name_or_path outputs/ddrnet-23-slim/best_model \\
        --inputs /data/cityscapes/leftImg8bit/demoVideo/stuttgart_00 --sequence_fps 17 --output_dir predictions
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import sys
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from fractions import Fraction
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from dataset_builders.cityscapes.labels import CLASS_NAMES, TRAIN_ID_TO_LABEL_ID
from ddrnet_toolkit.cli import UserInputError, run_script
from ddrnet_toolkit.images import (
    IMAGE_SUFFIXES,
    check_folder_creatable,
    image_size,
    read_rgb_image,
    save_png,
    writable_folder,
)
from ddrnet_toolkit.inference import add_inference_arguments, inference_options, predict_classes
from ddrnet_toolkit.model_loading import load_trained_model
from ddrnet_toolkit.video import (
    VIDEO_SUFFIXES,
    ImageSequence,
    VideoReader,
    frame_order,
    frame_writer,
    video_writer,
)
from ddrnet_toolkit.visualization import colorize, model_palette, overlay

FORMATS = ("color", "overlay", "cityscapes")
VIDEO_FORMATS = ("overlay", "color", "labels")
INPUT_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES
SUFFIX_LIST = ", ".join(INPUT_SUFFIXES)


def is_under(path: Path, folder: Path | None) -> bool:
    return folder is not None and path.resolve().is_relative_to(folder.resolve())


def find_images(inputs: list[str], exclude: Path | None = None) -> list[Path]:
    """Expand files, folders and globs into a sorted, duplicate-free list of image and video files.

    Files under `exclude` (the output folder) are not inputs, so that a second run does not predict predictions.
    """
    found: dict[Path, Path] = {}
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            matches = [
                p
                for p in path.rglob("*")
                if p.suffix.lower() in INPUT_SUFFIXES and p.is_file() and not is_under(p, exclude)
            ]
            if not matches:
                raise UserInputError(f"--inputs {item}: the folder holds no image or video ({SUFFIX_LIST})")
        elif path.is_file():
            if path.suffix.lower() not in INPUT_SUFFIXES:
                raise UserInputError(
                    f"--inputs {item}: not an image file or a video this script reads (suffix "
                    f"{path.suffix or 'none'}; expected {SUFFIX_LIST})"
                )
            matches = [path]
        else:
            matches = [
                Path(p)
                for p in glob.glob(item, recursive=True)
                if Path(p).suffix.lower() in INPUT_SUFFIXES and Path(p).is_file() and not is_under(Path(p), exclude)
            ]
            if not matches:
                raise UserInputError(f"--inputs {item}: no such file, folder, or image or video matching this pattern")
        for match in sorted(matches):
            found.setdefault(match.resolve(), match)
    return list(found.values())


def output_names(paths: list[Path], suffix: str = ".png", where: str = "<format>") -> dict[Path, Path]:
    """Each input's output path under the folder `where`: its folder relative to the inputs' common parent, its stem
    (a folder's whole name) and `suffix`.

    Raises `UserInputError` naming both inputs when two of them would be written to the same output.
    """
    if not paths:
        return {}
    resolved = [path.resolve() for path in paths]
    common = Path(os.path.commonpath([path.parent for path in resolved]))
    names = {}
    for path, real in zip(paths, resolved, strict=True):
        relative = real.relative_to(common)
        names[path] = relative.with_name((real.name if real.is_dir() else real.stem) + suffix)
    owners: dict[Path, Path] = {}
    for path, name in names.items():
        if name in owners:
            raise UserInputError(
                f"--inputs {owners[name]} and {path} would both be written to {where}/{name.as_posix()}: rename "
                "one of them or predict them in separate runs (nothing was predicted)"
            )
        owners[name] = path
    return names


def image_sequences(images: list[Path]) -> dict[Path, list[Path]]:
    """The images grouped by folder, each group in `frame_order`: the frames of one video per folder."""
    groups: dict[Path, list[Path]] = defaultdict(list)
    for path in images:
        groups[path.parent].append(path)
    return {folder: sorted(paths, key=frame_order) for folder, paths in groups.items()}


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


def predict_video(
    source: VideoReader | ImageSequence,
    name: Path,
    output_dir: Path,
    args: argparse.Namespace,
    predict: Callable[[np.ndarray], np.ndarray],
    palette: np.ndarray,
) -> int:
    """Predict every frame of `source`, writing its --video_formats under <output_dir>/video; returns the frame count.

    An error stops the writing: what this source had written so far is removed.
    """
    info = source.info
    pictures = {
        "overlay": lambda frame, classes: overlay(frame, classes, args.alpha, palette),
        "color": lambda frame, classes: colorize(classes, palette),
        "labels": lambda frame, classes: classes,
    }
    frames = 0
    with ExitStack() as outputs, tqdm(total=info.frames, desc=name.as_posix(), unit="frame") as progress:
        writers = {}
        for format_name in args.video_formats:
            target = output_dir / "video" / format_name / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if format_name == "labels":
                writers[format_name] = outputs.enter_context(frame_writer(target.with_suffix("")))
            else:
                writers[format_name] = outputs.enter_context(video_writer(target, info.width, info.height, info.fps))
        for batch in source.batches(args.batch_size):
            for frame, classes in zip(batch, predict(batch), strict=True):
                for format_name, write in writers.items():
                    write(pictures[format_name](frame, classes))
            frames += len(batch)
            progress.update(len(batch))
    return frames


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


def frame_rate(value: str) -> Fraction:
    """argparse `type` of frame rates: a positive number or ratio (25, 29.97, 30000/1001)."""
    try:
        rate = Fraction(value)
    except (ValueError, ZeroDivisionError) as error:
        raise argparse.ArgumentTypeError(f"not a number or a ratio: {value}") from error
    if rate <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return rate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="Model folder (save_pretrained output).")
    parser.add_argument("--inputs", nargs="+", required=True, help="Image or video files, folders or glob patterns.")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--formats", nargs="+", choices=FORMATS, help="Outputs of each image (default: color overlay).")
    parser.add_argument(
        "--video_formats",
        nargs="+",
        choices=VIDEO_FORMATS,
        default=["overlay"],
        help="Outputs of each video and image sequence.",
    )
    parser.add_argument(
        "--sequence_fps",
        type=frame_rate,
        metavar="FPS",
        help="Predict the images of each folder as the frames of one video at FPS frames per second (25, 29.97, "
        "30000/1001), ordered by file name, instead of one by one.",
    )
    parser.add_argument(
        "--batch_size", type=int, default=4, help="Images of equal size, or video frames, per forward pass."
    )
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
    if args.sequence_fps is not None and args.formats is not None:
        parser.error("--formats: with --sequence_fps the images are predicted as videos; use --video_formats")
    args.formats = args.formats or ["color", "overlay"]
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
    images = [path for path in paths if path.suffix.lower() in IMAGE_SUFFIXES]
    videos = [path for path in paths if path.suffix.lower() in VIDEO_SUFFIXES]
    sequences = image_sequences(images) if args.sequence_fps is not None else {}
    if sequences:
        images = []
    names = output_names(images)
    video_names = output_names([*videos, *sequences], suffix=".mp4", where="video/<format>")
    folders = [output_dir / format_name for format_name in args.formats] if images else []
    if video_names:
        folders += [output_dir / "video" / format_name for format_name in args.video_formats]
    check_folder_creatable(output_dir, "--output_dir")
    for folder in folders:
        check_folder_creatable(folder, "--output_dir")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    model = load_trained_model(args.model_name_or_path)
    palette = model_palette(args.model_name_or_path, model.config.id2label)
    if images and "cityscapes" in args.formats:
        check_cityscapes_classes(model, args.model_name_or_path)
    model = model.to(device)
    predict = partial(predict_classes, model, device=device, inference=args.inference)

    failures: dict[Path, str] = {}
    by_size: dict[tuple[int, int], list[Path]] = defaultdict(list)
    for path in images:
        try:
            by_size[image_size(path)].append(path)
        except UserInputError as error:
            failures[path] = str(error)
    sources: dict[Path, VideoReader | ImageSequence] = {}
    for path in video_names:
        try:
            sources[path] = (
                ImageSequence(sequences[path], args.sequence_fps) if path in sequences else VideoReader(path)
            )
        except UserInputError as error:
            failures[path] = str(error)
    total = len(images) + len(video_names)
    if failures and args.on_error == "stop":
        shown = "; ".join(list(failures.values())[:5])
        if len(failures) > 5:
            shown += f"; and {len(failures) - 5} more"
        raise UserInputError(f"{len(failures)} of {total} input(s) cannot be read, nothing was predicted: {shown}")
    for folder in folders:
        writable_folder(folder, "--output_dir")

    written = 0
    batches = [
        group[i : i + args.batch_size] for group in by_size.values() for i in range(0, len(group), args.batch_size)
    ]
    if images:
        with tqdm(total=sum(len(batch) for batch in batches), desc="predicting", unit="image") as progress:
            for batch in batches:
                batch_paths, batch_images = [], []
                for path in batch:
                    try:
                        batch_images.append(read_rgb_image(path))
                        batch_paths.append(path)
                    except UserInputError as error:
                        if args.on_error == "stop":
                            kept = f"the {written} prediction(s) already written to {output_dir} are kept"
                            raise UserInputError(f"{error} (stopped; {kept})") from error
                        failures[path] = str(error)
                        progress.update(1)
                if not batch_paths:
                    continue
                predictions = predict(np.stack(batch_images))
                for path, image, prediction in zip(batch_paths, batch_images, predictions, strict=True):
                    write_outputs(image, prediction, names[path], output_dir, args.formats, args.alpha, palette)
                    written += 1
                progress.update(len(batch_paths))
        print(f"wrote {written} prediction(s) per format to {output_dir}/{{{','.join(args.formats)}}}")

    videos_written, frames = 0, 0
    for path, source in sources.items():
        try:
            frames += predict_video(source, video_names[path], output_dir, args, predict, palette)
            videos_written += 1
        except UserInputError as error:
            if args.on_error == "stop":
                kept = (
                    f"what it had written was removed; the outputs of {written} image(s) and {videos_written} "
                    "video(s) before it are kept"
                )
                raise UserInputError(f"{error} (stopped; {kept})") from error
            failures[path] = str(error)
    if sources:
        print(
            f"wrote {videos_written} video(s) of {frames} frame(s) in all per format to "
            f"{output_dir}/video/{{{','.join(args.video_formats)}}}"
        )
    if failures:
        for message in failures.values():
            print(f"skipped: {message}", file=sys.stderr)
        raise UserInputError(f"skipped {len(failures)} of {total} input(s) that cannot be read (listed above)")
    return 0


if __name__ == "__main__":
    run_script(main)
