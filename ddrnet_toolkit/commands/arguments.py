"""The options several commands share, and their translation into the library's plain values.

This is the command-line edge: the only place where `argparse` namespaces are read and flag names are put into
messages about values the library refused.
"""

from __future__ import annotations

import argparse
import math
from fractions import Fraction
from pathlib import Path

import torch

from dataset_builders.disk_space import InsufficientDiskSpace
from dataset_builders.split_files.split_files import IMAGE_STORAGES

from ..data.selection import SelectedDataset, load_dataset
from ..devices import resolve_device
from ..errors import UserInputError
from ..inference.engines import ENGINES, Engine, engine_for_file, load_engine
from ..inference.segmentation import InferenceOptions

DEFAULT_WINDOW = (1024, 1024)


def non_negative_int(value: str) -> int:
    """argparse `type` of counts: an integer >= 0 (argparse reports anything else as an argument error)."""
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return number


def seed(value: str) -> int:
    """argparse `type` of random seeds: an integer 0..2**32 - 1, what NumPy's and torch's generators take."""
    number = int(value)
    if not 0 <= number < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer in 0..{2**32 - 1}, got {value}")
    return number


def positive_int(value: str) -> int:
    """argparse `type` of counts that cannot be 0: an integer >= 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return number


def frame_rate(value: str) -> Fraction:
    """argparse `type` of frame rates: a positive number or ratio (25, 29.97, 30000/1001)."""
    try:
        rate = Fraction(value)
    except (ValueError, ZeroDivisionError) as error:
        raise argparse.ArgumentTypeError(f"not a number or a ratio: {value}") from error
    if rate <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return rate


def device_from_arguments(value: str, parser: argparse.ArgumentParser) -> torch.device:
    """`--device`: `auto` or a device of this machine (anything else is an argument error)."""
    try:
        return resolve_device(value)
    except UserInputError as error:
        parser.error(f"--device {error}")


def positive_seconds(value: str) -> float:
    """argparse `type` of durations: a finite number of seconds > 0."""
    seconds = float(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {value}")
    return seconds


def add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a run under `accelerate launch` with several processes or machines."""
    parser.add_argument(
        "--ddp_timeout",
        type=positive_seconds,
        default=1800,
        metavar="SECONDS",
        help="Longest wait of a distributed run for its other processes (default 1800, as transformers): one whose "
        "peer hangs or whose machine is lost stops after it with one line. It must cover the longest wait of a "
        "healthy run: the main process preparing a dataset the cache does not hold yet.",
    )


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data (one of --data_dir or --dataset_name)")
    group.add_argument("--data_dir", default=None, help="Root of a dataset with .lst split files (Cityscapes: as is).")
    group.add_argument("--list_dir", default=None, help="Folder of the .lst split files (default: <data_dir>/lists).")
    group.add_argument(
        "--dataset_name", default=None, help="A save_to_disk folder, a folder of parquet files, or a Hub dataset."
    )
    group.add_argument("--dataset_config_name", default=None, help="Configuration of a Hub dataset.")
    group.add_argument("--image_column", default="image", help="Image column of --dataset_name (default: image).")
    group.add_argument("--label_column", default="label", help="Label column of --dataset_name (default: label).")
    group.add_argument(
        "--labels_file",
        default=None,
        help="JSON classes file: {id: name}, or {id2label, colors, ignore_index, label_map}. Required for every "
        "dataset but Cityscapes.",
    )
    group.add_argument(
        "--reduce_labels", action="store_true", help="Stored 0 is background to ignore; other values shift down by 1."
    )
    group.add_argument("--cache_dir", default=None, help="datasets cache folder.")
    group.add_argument(
        "--preprocessing_num_workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="Processes that prepare a --data_dir dataset the cache does not hold yet (default: one). The rows and "
        "the cache are the same whatever N.",
    )
    group.add_argument(
        "--train_image_storage",
        choices=IMAGE_STORAGES,
        default="uncompressed",
        help="How a --data_dir dataset stores the images of train and trainval: uncompressed PNGs (default; about "
        "4x faster to read in training, about 3x the disk of a photo's PNG) or the original files' bytes. Each "
        "choice is a cache of its own: give every command that reads the dataset the same one.",
    )
    group.add_argument(
        "--dataset_display_name", default=None, help="Name in results and model cards (default: from the data)."
    )


def check_dataset_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if (args.data_dir is None) == (args.dataset_name is None):
        parser.error("give exactly one of --data_dir (split files) or --dataset_name (a datasets dataset)")
    if args.dataset_name is not None and args.labels_file is None:
        parser.error("--dataset_name needs --labels_file: the classes of a dataset other than Cityscapes")
    if args.reduce_labels and args.labels_file is None:
        parser.error("--reduce_labels needs --labels_file (Cityscapes labels are converted by its own table)")


def dataset_from_arguments(args: argparse.Namespace) -> SelectedDataset:
    """The dataset the options of `add_dataset_arguments` select; a disk too small for its preparation is refused
    with the options that change where it goes or how much it takes."""
    try:
        return select_dataset(args)
    except InsufficientDiskSpace as error:
        hint = "free some space, point --cache_dir to a larger disk"
        if args.train_image_storage == "uncompressed":
            hint += ", or store the training images as they are (--train_image_storage original)"
        raise UserInputError(f"{error}: {hint}") from error


def select_dataset(args: argparse.Namespace) -> SelectedDataset:
    return load_dataset(
        data_dir=args.data_dir,
        dataset_name=args.dataset_name,
        labels_file=args.labels_file,
        list_dir=args.list_dir,
        dataset_config_name=args.dataset_config_name,
        image_column=args.image_column,
        label_column=args.label_column,
        reduce_labels=args.reduce_labels,
        cache_dir=args.cache_dir,
        display_name=args.dataset_display_name,
        num_proc=args.preprocessing_num_workers,
        image_storage=args.train_image_storage,
    )


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """The multi-scale, flip and sliding-window options shared by the evaluation and prediction commands."""
    group = parser.add_argument_group("inference")
    group.add_argument("--scales", type=float, nargs="+", default=[1.0], help="Input scales to average.")
    group.add_argument("--flip", action="store_true", help="Also average horizontally flipped predictions.")
    group.add_argument("--sliding_window", action="store_true", help="Predict in windows instead of whole.")
    group.add_argument(
        "--window", type=int, nargs=2, default=None, metavar=("H", "W"), help="With --sliding_window (1024 1024)."
    )
    group.add_argument("--stride", type=int, nargs=2, default=None, metavar=("H", "W"), help="Default: --window.")


def inference_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> InferenceOptions:
    """The test-time augmentation the options of `add_inference_arguments` ask for."""
    if not all(math.isfinite(scale) and scale > 0 for scale in args.scales):
        parser.error(f"--scales must be finite and positive, got {args.scales}")
    if not args.sliding_window:
        if args.window is not None or args.stride is not None:
            parser.error("--window and --stride apply to --sliding_window, which is not given")
        return InferenceOptions(scales=tuple(args.scales), flip=args.flip)
    window = tuple(args.window or DEFAULT_WINDOW)
    stride = tuple(args.stride or window)
    if min(*window, *stride) < 1:
        parser.error(f"--window and --stride must be positive, got {list(window)} and {list(stride)}")
    if any(step > size for step, size in zip(stride, window, strict=True)):
        parser.error(
            f"--stride {stride[0]} {stride[1]} is larger than --window {window[0]} {window[1]}: the pixels between "
            "two windows would get no prediction"
        )
    return InferenceOptions(scales=tuple(args.scales), flip=args.flip, window=window, stride=stride)


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that run an exported graph of the model instead of the PyTorch model."""
    group = parser.add_argument_group("engine")
    group.add_argument(
        "--exported_model",
        default=None,
        help="Run this export of --model_name_or_path (which still gives the classes and colours) instead of the "
        "PyTorch model, on the CPU: a .onnx file (ddrnet-export-onnx, fp32 or int8) or an OpenVINO .xml IR "
        "(ddrnet-export-openvino, fp32 or int8).",
    )
    group.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="Default: pytorch, or the exported file's (onnxruntime for .onnx, openvino for .xml); openvino also "
        "runs .onnx files.",
    )


def check_engine_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.exported_model is None:
        if args.engine not in (None, "pytorch"):
            parser.error(f"--engine {args.engine} runs an exported model: give --exported_model")
        return
    if args.engine == "pytorch":
        parser.error("--engine pytorch runs --model_name_or_path itself: leave out --exported_model")
    try:
        args.engine = engine_for_file(Path(args.exported_model), args.engine, what="--exported_model")
    except UserInputError as error:
        parser.error(str(error))


def engine_from_arguments(args: argparse.Namespace, device: torch.device) -> Engine:
    """The engine the options of `add_engine_arguments` select: the PyTorch model on `device`, or an exported
    graph on the CPU."""
    return load_engine(args.model_name_or_path, args.exported_model, args.engine, device, what="--exported_model")


def data_folder(path: str, flag: str) -> str:
    """A folder that must exist before a dataset is read from it (the `datasets` builders would name no flag)."""
    if not Path(path).is_dir():
        raise UserInputError(f"{flag} {path}: no such folder")
    return path


def add_synthetic_split_arguments(parser: argparse.ArgumentParser) -> None:
    """The sizes of the splits a synthetic-dataset generator writes, and its seed."""
    parser.add_argument("--num_train", type=non_negative_int, default=40, help="Training images (default: 40).")
    parser.add_argument("--num_val", type=non_negative_int, default=10, help="Validation images (default: 10).")
    parser.add_argument("--num_test", type=non_negative_int, default=5, help="Test images (default: 5).")
    parser.add_argument("--seed", type=seed, default=0, help="Random seed; the same seed gives the same data.")
