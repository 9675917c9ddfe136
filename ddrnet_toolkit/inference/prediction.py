"""Predicting a run's inputs and writing their outputs: images in batches of equal size, videos and image sequences
frame batch by frame batch, each output written atomically, unreadable inputs stopped at or skipped.

Image outputs go to `<output_dir>/<format>/<name>`: `color` (the mask in the dataset's colours), `overlay` (the
image blended with it), `cityscapes` (8-bit Cityscapes label ids for the benchmark server), `labels` (8-bit class
indices of the model, for other tools). Video outputs go to
`<output_dir>/video/<format>/<name>`: `overlay` and `color` MP4s, and `labels` (a folder of 8-bit class-index
frames).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dataset_builders.cityscapes.labels import CLASS_NAMES, TRAIN_ID_TO_LABEL_ID

from ..errors import UserInputError
from ..model_folder import class_names
from .images import image_size, read_rgb_image, save_png
from .inputs import PredictionInputs
from .video import ImageSequence, VideoReader, frame_writer, video_writer
from .visualization import colorize, overlay

FORMATS = ("color", "overlay", "cityscapes", "labels")
# An image or video frame above this many pixels is refused unless the limit is raised: its class scores alone
# take num_labels x 4 bytes a pixel (4096x4096 and 19 classes: 1.3 GB).
MAX_PIXELS = 4096 * 4096
VIDEO_FORMATS = ("overlay", "color", "labels")
# `(B, H, W, 3)` uint8 images -> `(B, H, W)` uint8 class indices.
Predictor = Callable[[np.ndarray], np.ndarray]


def check_cityscapes_classes(model, where: str) -> None:
    """The `cityscapes` format maps train ids 0..18 to Cityscapes label ids: only right for the Cityscapes classes."""
    config = model.config
    names = class_names(config)
    if names != list(CLASS_NAMES):
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise UserInputError(
            f"--formats cityscapes: the model in {where} predicts {config.num_labels} classes ({shown}), not the "
            f"{len(CLASS_NAMES)} Cityscapes classes in their order ({', '.join(CLASS_NAMES[:4])}, ...), so its "
            "Cityscapes label ids would be wrong; use --formats color overlay"
        )


@dataclass
class OutputWriter:
    """Writes the chosen formats of each prediction under `output_dir`, in the colours of `palette`."""

    output_dir: Path
    formats: list[str]
    video_formats: list[str]
    palette: np.ndarray
    alpha: float = 0.5

    def picture(self, format_name: str, image: np.ndarray, classes: np.ndarray) -> np.ndarray:
        if format_name == "color":
            return colorize(classes, self.palette)
        if format_name == "overlay":
            return overlay(image, classes, self.alpha, self.palette)
        if format_name == "cityscapes":
            return TRAIN_ID_TO_LABEL_ID[classes]
        return classes  # labels

    def write_image(self, image: np.ndarray, classes: np.ndarray, name: Path) -> None:
        for format_name in self.formats:
            target = self.output_dir / format_name / name
            target.parent.mkdir(parents=True, exist_ok=True)
            save_png(self.picture(format_name, image, classes), target)

    def write_video(self, source: VideoReader | ImageSequence, name: Path, predict: Predictor, batch_size: int) -> int:
        """Predict every frame of `source` and write its video formats; returns the number of frames. An error
        stops the writing, and what this source had written so far is removed."""
        info = source.info
        frames = 0
        with ExitStack() as outputs, tqdm(total=info.frames, desc=name.as_posix(), unit="frame") as progress:
            writers = {}
            for format_name in self.video_formats:
                target = self.output_dir / "video" / format_name / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if format_name == "labels":
                    writer = frame_writer(target.with_suffix(""))
                else:
                    writer = video_writer(target, info.width, info.height, info.fps)
                writers[format_name] = outputs.enter_context(writer)
            for batch in source.batches(batch_size):
                for frame, classes in zip(batch, predict(batch), strict=True):
                    for format_name, write in writers.items():
                        write(self.picture(format_name, frame, classes))
                frames += len(batch)
                progress.update(len(batch))
        return frames


@dataclass
class PredictionSummary:
    images: int = 0
    videos: int = 0
    frames: int = 0
    # Unreadable inputs left out with `skip_unreadable`: input -> the message naming it.
    skipped: dict[Path, str] = field(default_factory=dict)


class UnreadableInputs:
    """What an unreadable input does to the run: stops it (outputs already written are kept), or with `skip` is
    left out and reported in the summary."""

    def __init__(self, skip: bool, summary: PredictionSummary):
        self.skip = skip
        self.summary = summary

    def stop_or_skip(self, path: Path, error: UserInputError, kept: str) -> None:
        if not self.skip:
            raise UserInputError(f"{error} (stopped; {kept})") from error
        self.summary.skipped[path] = str(error)

    def stop_before_predicting(self, total: int) -> None:
        """Inputs found unreadable while planning stop the run before anything is predicted (unless skipped)."""
        failures = self.summary.skipped
        if failures and not self.skip:
            shown = "; ".join(list(failures.values())[:5])
            if len(failures) > 5:
                shown += f"; and {len(failures) - 5} more"
            raise UserInputError(f"{len(failures)} of {total} input(s) cannot be read, nothing was predicted: {shown}")


def check_pixels(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise UserInputError(
            f"{path}: {width}x{height} is {width * height / 1e6:.1f} megapixels, more than the limit of "
            f"{max_pixels} ({max_pixels / 1e6:.1f} megapixels; --max_pixels raises it): scale it down first"
        )


def open_sources(
    inputs: PredictionInputs, summary: PredictionSummary, max_pixels: int = MAX_PIXELS
) -> tuple[dict[tuple[int, int], list[Path]], dict[Path, VideoReader | ImageSequence]]:
    """Each image's size from its header (images are batched by size), and each video opened: an unreadable one,
    or one larger than `max_pixels`, is recorded in `summary.skipped` before any work."""
    by_size: dict[tuple[int, int], list[Path]] = defaultdict(list)
    for path in inputs.image_names:
        try:
            size = image_size(path)
            check_pixels(path, *size, max_pixels)
            by_size[size].append(path)
        except UserInputError as error:
            summary.skipped[path] = str(error)
    sources: dict[Path, VideoReader | ImageSequence] = {}
    for path in inputs.video_names:
        try:
            sequence = inputs.sequences.get(path)
            source = VideoReader(path) if sequence is None else ImageSequence(sequence, inputs.sequence_fps)
            check_pixels(path, source.info.width, source.info.height, max_pixels)
            sources[path] = source
        except UserInputError as error:
            summary.skipped[path] = str(error)
    return by_size, sources


def predict_inputs(
    inputs: PredictionInputs,
    predict: Predictor,
    writer: OutputWriter,
    batch_size: int,
    skip_unreadable: bool = False,
    before_writing: Callable[[], object] = lambda: None,
    max_pixels: int = MAX_PIXELS,
) -> PredictionSummary:
    """Predict every input and write its outputs; `before_writing` runs once every input has been opened (to
    create the output folders only then). Inputs of more than `max_pixels` are refused as unreadable ones are."""
    summary = PredictionSummary()
    policy = UnreadableInputs(skip_unreadable, summary)
    by_size, sources = open_sources(inputs, summary, max_pixels)
    policy.stop_before_predicting(inputs.count)
    before_writing()

    batches = [group[i : i + batch_size] for group in by_size.values() for i in range(0, len(group), batch_size)]
    with tqdm(total=sum(map(len, batches)), desc="predicting", unit="image", disable=not batches) as progress:
        for batch in batches:
            readable = {}
            for path in batch:
                try:
                    readable[path] = read_rgb_image(path)
                except UserInputError as error:
                    kept = f"the {summary.images} prediction(s) already written to {writer.output_dir} are kept"
                    policy.stop_or_skip(path, error, kept)
                    progress.update(1)
            if readable:
                predictions = predict(np.stack(list(readable.values())))
                for (path, image), classes in zip(readable.items(), predictions, strict=True):
                    writer.write_image(image, classes, inputs.image_names[path])
                    summary.images += 1
                progress.update(len(readable))

    for path, source in sources.items():
        try:
            summary.frames += writer.write_video(source, inputs.video_names[path], predict, batch_size)
            summary.videos += 1
        except UserInputError as error:
            kept = (
                f"what it had written was removed; the outputs of {summary.images} image(s) and {summary.videos} "
                "video(s) before it are kept"
            )
            policy.stop_or_skip(path, error, kept)
    return summary
