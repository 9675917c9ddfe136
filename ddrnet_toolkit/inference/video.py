"""Videos for prediction: decoding video files and image sequences a batch of frames at a time, encoding outputs.

Frames are never all held in memory. A file that PyAV (FFmpeg) cannot open or decode (not a video, truncated, a
codec this FFmpeg lacks) is a `UserInputError` naming it. Outputs are written under a temporary name beside their
destination and renamed into place when complete, so an interrupted run never leaves a half-written video (or
half a folder of frames) under its final name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UserInputError, one_line
from ..files import staging_folder, written_atomically
from .images import image_size, read_rgb_image, save_png

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.stream import VideoStream

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
# The rate of a video whose container gives none (e.g. a raw stream without timing).
DEFAULT_FPS = Fraction(30)
FRAME_NAME = re.compile(r"frame_\d{6,}\.png")


def import_av():
    """The `av` module (PyAV), or a `UserInputError` saying how to install it."""
    try:
        import av
    except ImportError as error:
        raise UserInputError(
            "reading and writing videos needs PyAV: pip install av (it comes with the train extra)"
        ) from error
    return av


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frames: int | None  # None when the container does not say


def announced_frames(container: InputContainer, fps: Fraction) -> int | None:
    """The frames a container's duration announces at `fps`, when it names no frame count (Matroska)."""
    if not container.duration:
        return None
    return round(container.duration / 1_000_000 * fps)  # the duration is in microseconds (av.time_base)


def undecodable(path: Path, reason: str) -> UserInputError:
    return UserInputError(f"{path}: cannot be decoded as a video ({reason})")


def batched(frames: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """`(H, W, 3)` frames -> `(B, H, W, 3)` batches of `size` frames (the last one may be smaller)."""
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


@contextmanager
def decoding(path: Path) -> Iterator[tuple[InputContainer, VideoStream]]:
    """The opened file's first video stream; an FFmpeg error inside the block becomes a `UserInputError`."""
    av = import_av()
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            if not container.streams.video:
                raise undecodable(path, "it holds no video stream")
            yield container, container.streams.video[0]
    except av.error.FFmpegError as error:
        raise undecodable(path, getattr(error, "strerror", None) or one_line(error)) from error


class VideoReader:
    """The frames of a video file. Opening decodes the first frame, so an unreadable file fails before any work."""

    def __init__(self, path: Path):
        self.path = path
        with decoding(path) as (container, stream):
            first = next(container.decode(stream), None)
            if first is None:
                raise undecodable(path, "it holds no decodable frame")
            fps = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
            self.info = VideoInfo(first.width, first.height, fps, stream.frames or announced_frames(container, fps))

    def frames(self) -> Iterator[np.ndarray]:
        """`(H, W, 3)` uint8 RGB frames in display order, each scaled to the first frame's size (a stream may change
        size midway). A stream that ends well before the frames its container announces is refused: a truncated
        file whose container (Matroska, say) keeps playing what is left."""
        decoded = 0
        with decoding(self.path) as (container, stream):
            for packet in container.demux(stream):
                # A packet cut short by the end of the file: FFmpeg's decoders may conceal it rather than fail.
                if packet.is_corrupt:
                    raise undecodable(self.path, f"the packet at byte {packet.pos} is cut short: truncated file?")
                for frame in packet.decode():
                    decoded += 1
                    yield frame.to_ndarray(format="rgb24", width=self.info.width, height=self.info.height)
        expected = self.info.frames
        if expected is not None and decoded < expected - max(2, expected // 100):
            raise undecodable(
                self.path, f"it ends after {decoded} of the {expected} frames its container announces: truncated?"
            )

    def batches(self, size: int) -> Iterator[np.ndarray]:
        """`(B, H, W, 3)` uint8 RGB frames, `B <= size`, decoded as they are needed."""
        return batched(self.frames(), size)


def frame_order(path: Path) -> list[str | int]:
    """Sort key of image files in a sequence: by name, numbers compared as numbers (frame_2 before frame_10)."""
    return [int(part) if part.isdecimal() else part for part in re.split(r"(\d+)", path.name)]


class ImageSequence:
    """Image files (one folder's, in `frame_order`) as the frames of a video at `fps`.

    Every frame's header is read at once, so an unreadable frame or one of another size fails before any work.
    """

    def __init__(self, paths: list[Path], fps: Fraction):
        self.paths = paths
        width, height = image_size(paths[0])
        for path in paths[1:]:
            size = image_size(path)
            if size != (width, height):
                raise UserInputError(
                    f"{path}: {size[0]}x{size[1]} pixels, but the sequence starts with {paths[0].name} at "
                    f"{width}x{height}: the frames of a video must share one size"
                )
        self.info = VideoInfo(width, height, fps, len(paths))

    def batches(self, size: int) -> Iterator[np.ndarray]:
        """`(B, H, W, 3)` uint8 RGB frames, `B <= size`, read as they are needed."""
        return batched(map(read_rgb_image, self.paths), size)


@contextmanager
def video_writer(path: Path, width: int, height: int, fps: Fraction) -> Iterator[Callable[[np.ndarray], None]]:
    """A function encoding `(height, width, 3)` uint8 RGB frames into an MP4 at `path`, complete when the block ends.

    The codec is H.264 (libx264) when this PyAV has it, else MPEG-4 Part 2, in yuv420p, which most players need.
    yuv420p needs an even width and height: an odd one gets one more column or row, a copy of the edge.
    """
    av = import_av()
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with written_atomically(path) as temporary, av.open(str(temporary), "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width + width % 2, height + height % 2, "yuv420p"
        padding = ((0, height % 2), (0, width % 2), (0, 0))

        def write(frame: np.ndarray) -> None:
            rgb = np.pad(frame, padding, mode="edge")
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))

        yield write
        container.mux(stream.encode())  # the frames the encoder still holds


@contextmanager
def frame_writer(folder: Path) -> Iterator[Callable[[np.ndarray], None]]:
    """A function writing `(H, W)` uint8 frames as `folder`/frame_000000.png, frame_000001.png, ...

    The frames go to a temporary folder beside `folder`, moved into it when the block ends without error. When
    `folder` exists, the frames an earlier run left there are replaced and nothing else in it is touched.
    """
    index = count()
    with staging_folder(folder) as temporary:
        yield lambda frame: save_png(frame, temporary / f"frame_{next(index):06d}.png")
        if not folder.exists():
            os.replace(temporary, folder)
            return
        for stale in folder.iterdir():
            if FRAME_NAME.fullmatch(stale.name):
                stale.unlink()
        for frame in sorted(temporary.iterdir()):
            os.replace(frame, folder / frame.name)
