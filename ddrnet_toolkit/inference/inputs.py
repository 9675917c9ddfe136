"""What a prediction run reads and where each output goes: files, folders and globs expanded into images, videos and
image sequences, each with an output name that keeps its folder relative to the inputs' common parent.

Two inputs that would share an output (the same stem in one folder, e.g. `a.png` and `a.jpg`) are refused before
anything is predicted.
"""

from __future__ import annotations

import glob
import os
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..errors import UserInputError
from .images import IMAGE_SUFFIXES
from .video import VIDEO_SUFFIXES, frame_order

INPUT_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES
SUFFIX_LIST = ", ".join(INPUT_SUFFIXES)


def is_under(path: Path, folder: Path | None) -> bool:
    return folder is not None and path.resolve().is_relative_to(folder.resolve())


def is_input_file(path: Path, exclude: Path | None) -> bool:
    return path.suffix.lower() in INPUT_SUFFIXES and path.is_file() and not is_under(path, exclude)


def find_inputs(items: list[str], exclude: Path | None = None, what: str = "input") -> list[Path]:
    """Files, folders (searched recursively) and glob patterns expanded into a sorted, duplicate-free list of image
    and video files; `what` starts the message of an item that gives none.

    Files under `exclude` (the output folder) are not inputs, so that a second run does not predict predictions.
    """
    found: dict[Path, Path] = {}
    for item in items:
        path = Path(item)
        if path.is_dir():
            matches = [p for p in path.rglob("*") if is_input_file(p, exclude)]
            if not matches:
                raise UserInputError(f"{what} {item}: the folder holds no image or video ({SUFFIX_LIST})")
        elif path.is_file():
            if path.suffix.lower() not in INPUT_SUFFIXES:
                raise UserInputError(
                    f"{what} {item}: not an image file or a video this script reads (suffix "
                    f"{path.suffix or 'none'}; expected {SUFFIX_LIST})"
                )
            matches = [path]
        else:
            matches = [Path(p) for p in glob.glob(item, recursive=True) if is_input_file(Path(p), exclude)]
            if not matches:
                raise UserInputError(f"{what} {item}: no such file, folder, or image or video matching this pattern")
        for match in sorted(matches):
            found.setdefault(match.resolve(), match)
    return list(found.values())


def output_names(paths: list[Path], suffix: str, where: str, what: str = "input") -> dict[Path, Path]:
    """Each input's output path under the folder `where`: its folder relative to the inputs' common parent, its stem
    (a folder's whole name) and `suffix`; `UserInputError` naming both inputs when two would share an output."""
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
                f"{what} {owners[name]} and {path} would both be written to {where}/{name.as_posix()}: rename "
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


@dataclass
class PredictionInputs:
    """The images predicted one by one and the videos (files, or folders of frames at `sequence_fps`), each with
    its output name: `image_names` under `<format>/`, `video_names` under `video/<format>/`."""

    image_names: dict[Path, Path] = field(default_factory=dict)
    video_names: dict[Path, Path] = field(default_factory=dict)
    sequences: dict[Path, list[Path]] = field(default_factory=dict)
    sequence_fps: Fraction | None = None

    @classmethod
    def plan(cls, paths: list[Path], sequence_fps: Fraction | None = None, what: str = "input") -> PredictionInputs:
        """With `sequence_fps`, the images of each folder are the frames of one video instead of single images."""
        images = [path for path in paths if path.suffix.lower() in IMAGE_SUFFIXES]
        videos = [path for path in paths if path.suffix.lower() in VIDEO_SUFFIXES]
        sequences = image_sequences(images) if sequence_fps is not None else {}
        if sequences:
            images = []
        return cls(
            image_names=output_names(images, ".png", "<format>", what),
            video_names=output_names([*videos, *sequences], ".mp4", "video/<format>", what),
            sequences=sequences,
            sequence_fps=sequence_fps,
        )

    @property
    def count(self) -> int:
        return len(self.image_names) + len(self.video_names)

    def input_bytes(self, path: Path) -> int:
        """The size on disk of a video, or of all the frames of an image sequence: a measure of its work."""
        return sum(frame.stat().st_size for frame in self.sequences.get(path, [path]))

    def shard(self, index: int, count: int) -> PredictionInputs:
        """The inputs that process `index` of `count` predicts, each input in exactly one shard, with the output
        names of the whole plan: images in turn (they are then batched by size), videos and sequences so that the
        shards' bytes (their work) come out about even, the largest first, each to the lightest shard so far."""
        if count == 1:
            return self
        sizes = {path: self.input_bytes(path) for path in self.video_names}
        load = [0] * count
        mine = set()
        for path in sorted(sizes, key=lambda path: -sizes[path]):  # a stable sort: equal sizes keep the plan's order
            lightest = load.index(min(load))
            load[lightest] += sizes[path]
            if lightest == index:
                mine.add(path)
        images = list(self.image_names)[index::count]
        return PredictionInputs(
            image_names={path: self.image_names[path] for path in images},
            video_names={path: name for path, name in self.video_names.items() if path in mine},
            sequences={path: frames for path, frames in self.sequences.items() if path in mine},
            sequence_fps=self.sequence_fps,
        )

    def output_folders(self, output_dir: Path, formats: list[str], video_formats: list[str]) -> list[Path]:
        """The folders the outputs go into: one per image format, one per video format."""
        folders = [output_dir / name for name in formats] if self.image_names else []
        if self.video_names:
            folders += [output_dir / "video" / name for name in video_formats]
        return folders
