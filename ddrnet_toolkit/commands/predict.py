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
  labels      8-bit class indices of the model (train ids for a Cityscapes model), for other tools

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

16-bit grayscale PNGs are scaled to 8 bits. Images and videos larger than --max_pixels are refused as unreadable
inputs are. An input that cannot be read (a truncated image or video, a file that is
not an image or cannot be decoded as a video, an image too large to decode safely, a sequence frame of another size)
stops the run with its name (--on_error stop, the default; outputs already written are kept), or with --on_error
skip is left out (an unreadable frame leaves out its whole sequence): the others are predicted, every skipped input
is listed at the end, and the exit status is 1.

With --exported_model, an export of the model runs instead of the PyTorch model, on the CPU: an ONNX graph
(onnxruntime) or an OpenVINO IR, fp32 or int8 (ddrnet-export-onnx, ddrnet-export-openvino); the outputs are the same
files.

A job is resumable: an output that exists is complete (outputs are renamed into place when written), so running the
same command again predicts only the inputs whose outputs are missing, and an interrupted job finishes the rest;
--overwrite predicts everything again. <output_dir>/prediction_settings.json records the model and the options that
change the pictures, and a job with others is refused beside those outputs unless --overwrite. At the end,
<output_dir>/manifest.jsonl lists every input (JSON lines: input, outputs, status: predicted, already_complete or
unreadable, with the error), written atomically.

Under `accelerate launch` the job is shared out over every process of every machine: each input is predicted once,
by one process on its own device (images in turns, videos by size so that the shares come out even), with the same
outputs as one process; one progress bar on the main process counts the whole job (images and video frames).

Examples:
    python scripts/predict.py --model_name_or_path outputs/ddrnet-23-slim/best_model \\
        --inputs "/data/cityscapes/leftImg8bit/test/*/*.png" --output_dir predictions --formats cityscapes
    python scripts/predict.py --model_name_or_path outputs/ddrnet-23-slim/best_model \\
        --inputs clips/drive.mp4 --output_dir predictions --video_formats overlay labels
    python scripts/predict.py --model_name_or_path outputs/ddrnet-23-slim/best_model \\
        --inputs /data/cityscapes/leftImg8bit/demoVideo/stuttgart_00 --sequence_fps 17 --output_dir predictions
    python scripts/predict.py --model_name_or_path M --exported_model ddrnet.int8.xml --inputs street/ \\
        --output_dir predictions
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml scripts/predict.py \\
        --model_name_or_path outputs/ddrnet-23-slim/best_model --inputs /data/fleet --output_dir /data/fleet-masks
"""

from __future__ import annotations

import argparse
import math
import sys
from functools import partial
from pathlib import Path

import torch

from ..errors import RunWideError, UserInputError
from ..files import check_folder_creatable, writable_folder
from ..inference.inputs import PredictionInputs, find_inputs
from ..inference.job import JobProcesses
from ..inference.prediction import (
    FORMATS,
    MANIFEST_FILE,
    MAX_PIXELS,
    VIDEO_FORMATS,
    OutputWriter,
    PredictionSummary,
    check_cityscapes_classes,
    predict_inputs,
    prediction_settings,
)
from ..inference.segmentation import predict_classes
from ..inference.visualization import model_palette
from ..training.accelerator import make_accelerator
from .arguments import (
    add_distributed_arguments,
    add_engine_arguments,
    add_inference_arguments,
    check_engine_arguments,
    device_from_arguments,
    engine_from_arguments,
    frame_rate,
    inference_options,
)
from .runner import entry_point, is_distributed_process


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
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Predict every input again and replace its outputs (by default, outputs already there are kept and only "
        "the missing ones are predicted, so a job run again finishes what an interrupted one left).",
    )
    add_inference_arguments(parser)
    add_engine_arguments(parser)
    parser.add_argument("--alpha", type=float, default=0.5, help="Mask opacity in overlays.")
    parser.add_argument(
        "--max_pixels",
        type=int,
        default=MAX_PIXELS,
        help=f"Refuse images and videos larger than this many pixels (default {MAX_PIXELS}, 4096x4096): their class "
        "scores alone take 4 bytes a class and pixel.",
    )
    add_distributed_arguments(parser)
    args = parser.parse_args(argv)
    check_engine_arguments(args, parser)
    args.inference = inference_options(args, parser)
    if args.sequence_fps is not None and args.formats is not None:
        parser.error("--formats: with --sequence_fps the images are predicted as videos; use --video_formats")
    args.formats = args.formats or ["color", "overlay"]
    if args.batch_size < 1:
        parser.error("--batch_size must be at least 1")
    if args.max_pixels < 1:
        parser.error(f"--max_pixels must be at least 1, got {args.max_pixels}")
    if not (math.isfinite(args.alpha) and 0 <= args.alpha <= 1):
        parser.error(f"--alpha must be between 0 and 1, got {args.alpha}")
    args.device = device_from_arguments(args.device, parser)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    found = find_inputs(args.inputs, exclude=output_dir, what="--inputs")
    inputs = PredictionInputs.plan(found, args.sequence_fps, what="--inputs")
    folders = inputs.output_folders(output_dir, args.formats, args.video_formats)
    for folder in [output_dir, *folders]:
        check_folder_creatable(folder, "--output_dir")
    processes, device = processes_and_device(args)
    engine = engine_from_arguments(args, device)
    if inputs.image_names and "cityscapes" in args.formats:
        check_cityscapes_classes(engine, args.model_name_or_path)
    palette = model_palette(args.model_name_or_path, engine.config.id2label)
    writer = OutputWriter(output_dir, args.formats, args.video_formats, palette, args.alpha)
    predict = partial(predict_classes, engine, device=engine.device, options=args.inference)
    summary = predict_inputs(
        inputs,
        predict,
        writer,
        args.batch_size,
        settings=prediction_settings(args.model_name_or_path, args.inference, args.alpha, args.exported_model),
        skip_unreadable=args.on_error == "skip",
        overwrite=args.overwrite,
        before_writing=lambda: [writable_folder(folder, "--output_dir") for folder in folders],
        max_pixels=args.max_pixels,
        processes=processes,
    )
    if processes.is_main:
        report(summary, inputs, args)
    if summary.skipped:
        raise RunWideError(
            f"skipped {len(summary.skipped)} of {inputs.count} input(s) that cannot be read (listed above)"
        )
    return 0


def processes_and_device(args: argparse.Namespace) -> tuple[JobProcesses, torch.device]:
    """One process on `--device`, or under `accelerate launch` with several processes each on its own device (a GPU
    of its machine, or the CPU where there is none), sharing the job."""
    if not is_distributed_process():
        return JobProcesses(), args.device
    accelerator = make_accelerator(timeout_seconds=args.ddp_timeout)
    if args.device.type != accelerator.device.type:
        raise UserInputError(
            f"--device {args.device}: under accelerate launch every process predicts on its own device "
            f"({accelerator.device.type} here); leave --device auto"
        )
    return JobProcesses.of_initialized_run(args.ddp_timeout), accelerator.device


def report(summary: PredictionSummary, inputs: PredictionInputs, args: argparse.Namespace) -> None:
    """What the whole job wrote, what was there already, and what it skipped."""
    output_dir = Path(args.output_dir)
    if inputs.image_names:
        print(f"wrote {summary.images} prediction(s) per format to {output_dir}/{{{','.join(args.formats)}}}")
    if inputs.video_names:
        print(
            f"wrote {summary.videos} video(s) of {summary.frames} frame(s) in all per format to "
            f"{output_dir}/video/{{{','.join(args.video_formats)}}}"
        )
    if summary.complete:
        print(f"{summary.complete} input(s) already had all their outputs (left as they are; --overwrite redoes them)")
    print(f"manifest: {output_dir / MANIFEST_FILE}")
    for message in summary.skipped.values():
        print(f"skipped: {message}", file=sys.stderr)


cli = entry_point(main)


if __name__ == "__main__":
    cli()
