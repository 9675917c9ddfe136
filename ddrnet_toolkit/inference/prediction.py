"""Predicting a job's inputs and writing their outputs: images in batches of equal size, videos and image sequences
frame batch by frame batch, each output written atomically, unreadable inputs stopped at or skipped; shared out over
every process of a launch, resumable, and summed up in a manifest.

Image outputs go to `<output_dir>/<format>/<name>`: `color` (the mask in the dataset's colours), `overlay` (the
image blended with it), `cityscapes` (8-bit Cityscapes label ids for the benchmark server), `labels` (8-bit class
indices of the model, for other tools). Video outputs go to
`<output_dir>/video/<format>/<name>`: `overlay` and `color` MP4s, and `labels` (a folder of 8-bit class-index
frames). An output that exists is complete (each is renamed into place when written), so a job run again predicts
only what is missing; `<output_dir>/prediction_settings.json` records the model and options the outputs come from,
and a job with others is refused unless it redoes everything (`overwrite`). `<output_dir>/manifest.jsonl` lists
every input of the last job to finish: its outputs and status.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dataset_builders.cityscapes.labels import CLASS_NAMES, TRAIN_ID_TO_LABEL_ID

from ..errors import RunWideError, UserInputError
from ..files import json_text, write_json, write_text_atomically
from ..model_folder import CONFIG_FILE, class_names
from .images import image_size, read_rgb_image, save_png
from .inputs import PredictionInputs
from .job import JobProcesses, Progress
from .segmentation import InferenceOptions
from .video import ImageSequence, VideoReader, frame_writer, video_writer
from .visualization import colorize, overlay

FORMATS = ("color", "overlay", "cityscapes", "labels")
# An image or video frame above this many pixels is refused unless the limit is raised: its class scores alone
# take num_labels x 4 bytes a pixel (4096x4096 and 19 classes: 1.3 GB).
MAX_PIXELS = 4096 * 4096
VIDEO_FORMATS = ("overlay", "color", "labels")
MANIFEST_FILE = "manifest.jsonl"
SETTINGS_FILE = "prediction_settings.json"
# An input's status in the manifest.
PREDICTED, ALREADY_COMPLETE, UNREADABLE = "predicted", "already_complete", "unreadable"
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

    def image_outputs(self, name: Path) -> dict[str, Path]:
        """The output of each image format for the image named `name`."""
        return {format_name: self.output_dir / format_name / name for format_name in self.formats}

    def video_outputs(self, name: Path) -> dict[str, Path]:
        """The output of each video format for the video named `name` (`labels`: a folder of frames)."""
        outputs = {format_name: self.output_dir / "video" / format_name / name for format_name in self.video_formats}
        if "labels" in outputs:
            outputs["labels"] = outputs["labels"].with_suffix("")
        return outputs

    def write_image(self, image: np.ndarray, classes: np.ndarray, name: Path, formats: list[str]) -> None:
        for format_name, target in self.image_outputs(name).items():
            if format_name in formats:
                target.parent.mkdir(parents=True, exist_ok=True)
                save_png(self.picture(format_name, image, classes), target)

    def write_video(
        self,
        source: VideoReader | ImageSequence,
        name: Path,
        formats: list[str],
        predict: Predictor,
        batch_size: int,
        progress: Progress,
    ) -> int:
        """Predict every frame of `source` and write the video `formats`; returns the number of frames. An error
        stops the writing, and what this source had written so far is removed."""
        info = source.info
        frames = 0
        with ExitStack() as outputs:
            writers = {}
            for format_name, target in self.video_outputs(name).items():
                if format_name not in formats:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if format_name == "labels":
                    writer = frame_writer(target)
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


def missing_formats(outputs: dict[str, Path], overwrite: bool) -> list[str]:
    """The formats whose output is not there yet (all of them with `overwrite`)."""
    return [format_name for format_name, path in outputs.items() if overwrite or not path.exists()]


@dataclass
class InputRecord:
    """One line of the manifest: an input, its outputs relative to the output folder, and what the job did."""

    input: str
    outputs: list[str]
    status: str
    error: str | None = None


@dataclass
class PredictionSummary:
    images: int = 0
    videos: int = 0
    frames: int = 0
    # Inputs whose every output was there already (left as they are).
    complete: int = 0
    # Unreadable inputs left out with `skip_unreadable`: input -> the message naming it.
    skipped: dict[Path, str] = field(default_factory=dict)
    records: dict[Path, InputRecord] = field(default_factory=dict)

    def record(self, path: Path, outputs: dict[str, Path], output_dir: Path, status: str) -> None:
        relative = [target.relative_to(output_dir).as_posix() for target in outputs.values()]
        self.records[path] = InputRecord(str(path), relative if status != UNREADABLE else [], status)
        if status == UNREADABLE:
            self.records[path].error = self.skipped[path]

    @classmethod
    def merged(cls, summaries: list[PredictionSummary], order: list[Path]) -> PredictionSummary:
        """The summary of a whole job from those of its processes, its records in the order of `order`."""
        total = cls()
        for summary in summaries:
            total.images += summary.images
            total.videos += summary.videos
            total.frames += summary.frames
            total.complete += summary.complete
            total.skipped.update(summary.skipped)
            total.records.update(summary.records)
        total.records = {path: total.records[path] for path in order if path in total.records}
        return total

    def manifest_text(self) -> str:
        """JSON lines: one object per input (`input`, `outputs`, `status`, and `error` for an unreadable one)."""
        lines = [
            json.dumps({k: v for k, v in asdict(record).items() if v is not None}) for record in self.records.values()
        ]
        return "".join(line + "\n" for line in lines)


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

    def stop_before_predicting(self, failures: dict[Path, str], total: int) -> None:
        """Inputs that any process found unreadable while planning stop the job before anything is predicted
        (unless skipped); every process stops with the same error."""
        if failures and not self.skip:
            shown = "; ".join(list(failures.values())[:5])
            if len(failures) > 5:
                shown += f"; and {len(failures) - 5} more"
            raise RunWideError(f"{len(failures)} of {total} input(s) cannot be read, nothing was predicted: {shown}")


def check_pixels(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise UserInputError(
            f"{path}: {width}x{height} is {width * height / 1e6:.1f} megapixels, more than the limit of "
            f"{max_pixels} ({max_pixels / 1e6:.1f} megapixels; --max_pixels raises it): scale it down first"
        )


@dataclass
class PendingWork:
    """What one process has left to do: the formats still missing of each of its images (grouped by size, for
    batches) and videos, each video opened."""

    by_size: dict[tuple[int, int], dict[Path, list[str]]] = field(default_factory=lambda: defaultdict(dict))
    videos: dict[Path, tuple[VideoReader | ImageSequence, list[str]]] = field(default_factory=dict)

    def frames(self) -> int | None:
        """Images and video frames to predict; None when a video does not say how many frames it holds."""
        counts = [source.info.frames for source, _ in self.videos.values()]
        if None in counts:
            return None
        return sum(map(len, self.by_size.values())) + sum(counts)


def formats_to_write(
    path: Path, outputs: dict[str, Path], overwrite: bool, summary: PredictionSummary, output_dir: Path
) -> list[str]:
    """The formats of `outputs` to write for the input at `path`; none when all are there, which `summary` records."""
    formats = missing_formats(outputs, overwrite)
    if not formats:
        summary.complete += 1
        summary.record(path, outputs, output_dir, ALREADY_COMPLETE)
    return formats


def pending_work(
    share: PredictionInputs,
    writer: OutputWriter,
    overwrite: bool,
    summary: PredictionSummary,
    max_pixels: int = MAX_PIXELS,
) -> PendingWork:
    """The inputs of `share` with outputs still missing, each image's size read from its header and each video
    opened: an unreadable one, or one larger than `max_pixels`, is recorded in `summary.skipped` before any work, a
    complete one in its records."""
    work = PendingWork()
    for path, name in share.image_names.items():
        formats = formats_to_write(path, writer.image_outputs(name), overwrite, summary, writer.output_dir)
        try:
            if formats:
                size = image_size(path)
                check_pixels(path, *size, max_pixels)
                work.by_size[size][path] = formats
        except UserInputError as error:
            summary.skipped[path] = str(error)
    for path, name in share.video_names.items():
        formats = formats_to_write(path, writer.video_outputs(name), overwrite, summary, writer.output_dir)
        sequence = share.sequences.get(path)
        try:
            if formats:
                source = VideoReader(path) if sequence is None else ImageSequence(sequence, share.sequence_fps)
                check_pixels(path, source.info.width, source.info.height, max_pixels)
                work.videos[path] = (source, formats)
        except UserInputError as error:
            summary.skipped[path] = str(error)
    return work


def files_digest(paths: list[Path]) -> str:
    """The SHA-256 of the files' bytes, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def prediction_settings(
    model_dir: str | Path, options: InferenceOptions, alpha: float, exported_model: str | Path | None = None
) -> dict:
    """What the pictures of a job depend on besides its inputs: the model's weights and configuration (and the
    exported graph that runs instead, an OpenVINO IR with its weights file), the test-time augmentation and the
    overlays' opacity."""
    model_dir = Path(model_dir)
    settings = {
        "model_sha256": files_digest([*sorted(model_dir.glob("*.safetensors")), model_dir / CONFIG_FILE]),
        "inference": asdict(options),
        "alpha": alpha,
    }
    if exported_model is not None:
        exported = Path(exported_model)
        weights = exported.with_suffix(".bin")
        paths = [exported, weights] if exported.suffix == ".xml" and weights.is_file() else [exported]
        settings["exported_model_sha256"] = files_digest(paths)
    return settings


def check_settings(output_dir: Path, settings: dict, overwrite: bool) -> None:
    """Refuse to add outputs of other `settings` (the model, the options that change the pictures) beside those an
    earlier job wrote into `output_dir`, unless `overwrite` redoes them all."""
    recorded = output_dir / SETTINGS_FILE
    if overwrite or not recorded.is_file():
        return
    try:
        previous = json.loads(recorded.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        previous = {}
    settings = json.loads(json_text(settings))  # as JSON holds them (tuples become lists)
    if not isinstance(previous, dict):
        previous = {}
    changed = [key for key in {**previous, **settings} if previous.get(key) != settings.get(key)]
    if changed:
        raise RunWideError(
            f"{output_dir} holds predictions of other settings ({', '.join(changed)}; see {recorded}): pass "
            "--overwrite to redo every output, or choose another --output_dir"
        )


def predict_inputs(
    inputs: PredictionInputs,
    predict: Predictor,
    writer: OutputWriter,
    batch_size: int,
    *,
    settings: dict,
    skip_unreadable: bool = False,
    overwrite: bool = False,
    before_writing: Callable[[], object] = lambda: None,
    processes: JobProcesses | None = None,
    max_pixels: int = MAX_PIXELS,
) -> PredictionSummary:
    """Predict this process's share of the inputs (all of them with one process) and write the outputs still
    missing (all of them with `overwrite`); returns the whole job's summary, and the main process writes its
    manifest. Every input is opened first, by the process that predicts it, and an unreadable one stops every
    process before anything is written (unless skipped); then `before_writing` runs (to create the output folders
    only then) and the outputs' `settings` are recorded. Inputs of more than `max_pixels` are refused as unreadable
    ones are."""
    processes = processes or JobProcesses()
    check_settings(writer.output_dir, settings, overwrite)
    summary = PredictionSummary()
    policy = UnreadableInputs(skip_unreadable, summary)
    work = pending_work(inputs.shard(processes.index, processes.count), writer, overwrite, summary, max_pixels)
    found = processes.all_gather((summary.skipped, work.frames()))
    policy.stop_before_predicting(
        {path: error for skipped, _ in found for path, error in skipped.items()}, inputs.count
    )
    before_writing()
    settings_file = writer.output_dir / SETTINGS_FILE
    records_settings = processes.is_main and (overwrite or not settings_file.is_file())
    if records_settings:
        write_json(settings_file, settings)
    for path in summary.skipped:
        summary.record(path, {}, writer.output_dir, UNREADABLE)

    frames = [count for _, count in found]
    progress = processes.progress(None if None in frames else sum(frames), "frame" if inputs.video_names else "image")
    writing = JobWriting(inputs, predict, writer, batch_size, policy, progress)
    try:
        writing.images(work)
        writing.videos(work)
    except BaseException:
        # A job that stops before its first output leaves nothing behind (other processes may have written some).
        if records_settings and processes.count == 1 and summary.images == summary.videos == 0:
            settings_file.unlink(missing_ok=True)
        raise
    progress.close()
    summary = PredictionSummary.merged(processes.all_gather(summary), [*inputs.image_names, *inputs.video_names])
    if processes.is_main:
        write_text_atomically(writer.output_dir / MANIFEST_FILE, summary.manifest_text())
    return summary


@dataclass
class JobWriting:
    """One process predicting and writing its pending work, its unreadable inputs handled by `policy`."""

    inputs: PredictionInputs
    predict: Predictor
    writer: OutputWriter
    batch_size: int
    policy: UnreadableInputs
    progress: Progress

    def images(self, work: PendingWork) -> None:
        """The images of `work` in batches of equal size, each written in its missing formats."""
        summary, writer = self.policy.summary, self.writer
        for group in work.by_size.values():
            paths = list(group)
            for batch in (paths[i : i + self.batch_size] for i in range(0, len(paths), self.batch_size)):
                readable = {}
                for path in batch:
                    try:
                        readable[path] = read_rgb_image(path)
                    except UserInputError as error:
                        kept = f"the {summary.images} prediction(s) already written to {writer.output_dir} are kept"
                        self.policy.stop_or_skip(path, error, kept)
                        summary.record(path, {}, writer.output_dir, UNREADABLE)
                        self.progress.update(1)
                if readable:
                    predictions = self.predict(np.stack(list(readable.values())))
                    for (path, image), classes in zip(readable.items(), predictions, strict=True):
                        name = self.inputs.image_names[path]
                        writer.write_image(image, classes, name, group[path])
                        summary.images += 1
                        summary.record(path, writer.image_outputs(name), writer.output_dir, PREDICTED)
                    self.progress.update(len(readable))

    def videos(self, work: PendingWork) -> None:
        """The videos and image sequences of `work`, each written in its missing formats."""
        summary, writer = self.policy.summary, self.writer
        for path, (source, formats) in work.videos.items():
            name = self.inputs.video_names[path]
            try:
                frames = writer.write_video(source, name, formats, self.predict, self.batch_size, self.progress)
                summary.frames += frames
                summary.videos += 1
                summary.record(path, writer.video_outputs(name), writer.output_dir, PREDICTED)
            except UserInputError as error:
                kept = (
                    f"what it had written was removed; the outputs of {summary.images} image(s) and "
                    f"{summary.videos} video(s) before it are kept"
                )
                self.policy.stop_or_skip(path, error, kept)
                summary.record(path, {}, writer.output_dir, UNREADABLE)
