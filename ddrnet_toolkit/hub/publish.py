"""Publish a trained model as a Hub-style repository folder: weights, configs, remote code, a model card, and a
Gradio demo (app.py, requirements.txt, example images) that makes the same folder a Space."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from huggingface_hub.utils import HFValidationError, validate_repo_id
from PIL import Image

import modeling_ddrnet
from modeling_ddrnet import DDRNetForSemanticSegmentation, DDRNetImageProcessor

from ..errors import UserInputError
from ..files import full_disk_named, json_text, read_json_file, staging_folder
from ..inference.images import read_rgb_image
from ..inference.segmentation import predict_classes
from ..inference.visualization import colorize, model_palette, overlay
from ..model_folder import (
    CONFIG_FILE,
    EVAL_RESULTS_FILE,
    LABELS_FILE,
    PROCESSOR_FILE,
    SHARDED_WEIGHTS,
    TRAINING_ARGS_FILE,
    WEIGHTS_FILE,
    load_trained_model,
)
from .model_card import SAMPLE_IMAGE, check_eval_results, model_card
from .space_app import APP_FILE, APP_TEMPLATE, REQUIREMENTS_FILE, requirements_text, written_by_push

MODEL_PACKAGE_DIR = Path(modeling_ddrnet.__file__).parent
# The model package's files that `trust_remote_code=True` imports; they import only each other, torch,
# transformers and numpy.
REMOTE_CODE_FILES = ("configuration_ddrnet.py", "modeling_ddrnet.py", "loss_ddrnet.py", "image_processing_ddrnet.py")
MODEL_AUTO_MAP = {
    "AutoConfig": "configuration_ddrnet.DDRNetConfig",
    "AutoModel": "modeling_ddrnet.DDRNetModel",
    "AutoModelForSemanticSegmentation": "modeling_ddrnet.DDRNetForSemanticSegmentation",
}
PROCESSOR_AUTO_MAP = {"AutoImageProcessor": "image_processing_ddrnet.DDRNetImageProcessor"}
# The demo's example images: the --sample_image first, then the --example_images, as ddrnet_example_<n>.jpg (the
# name app.py looks for). A few, downscaled and JPEG-compressed, so that they add little to the repo.
EXAMPLE_IMAGE = "ddrnet_example_{}.jpg"
EXAMPLE_IMAGES = re.compile(r"ddrnet_example_\d+\.jpg")
MAX_EXAMPLE_IMAGES = 4
EXAMPLE_MAX_SIDE = 1024
EXAMPLE_JPEG_QUALITY = 90
# The files a push writes, and so the only ones a later push may replace or remove; anything else in the repo
# folder (a LICENSE, .gitattributes, notes) belongs to the user and is kept.
OWNED_FILES = frozenset(
    {
        CONFIG_FILE,
        WEIGHTS_FILE,
        "model.safetensors.index.json",
        PROCESSOR_FILE,
        "README.md",
        EVAL_RESULTS_FILE,
        TRAINING_ARGS_FILE,
        LABELS_FILE,
        SAMPLE_IMAGE,
        APP_FILE,
        REQUIREMENTS_FILE,
        *REMOTE_CODE_FILES,
    }
)
# Owned files with names a user may well have chosen before (their own Space app, their requirements): a push
# owns one of them only while it carries the push's marker line (`written_by_push`).
MARKED_FILES = frozenset({APP_FILE, REQUIREMENTS_FILE})


def read_json(path: Path) -> dict | None:
    return read_json_file(path) if path.is_file() else None


def is_owned(name: str) -> bool:
    """A file name this project writes into a hub repo folder."""
    return name in OWNED_FILES or any(p.fullmatch(name) is not None for p in (SHARDED_WEIGHTS, EXAMPLE_IMAGES))


def is_pushed_file(path: Path) -> bool:
    """A file of a repo folder that a push wrote and a later push may replace or remove: an owned name and, for
    app.py and requirements.txt, the push's marker line in it (else it is the user's)."""
    return is_owned(path.name) and (path.name not in MARKED_FILES or written_by_push(path))


def users_files(target: Path) -> set[str]:
    """The names among `MARKED_FILES` that the user owns in `target`: a push must not write them."""
    return {name for name in MARKED_FILES if (target / name).exists() and not is_pushed_file(target / name)}


def repo_id_problem(repo_id: str) -> str | None:
    """Why `repo_id` is not a Hub model id of the form ORG/NAME, or None when it is one."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        return str(error)
    if repo_id.count("/") != 1:
        return f"expected ORG/NAME, got {repo_id!r}"
    return None


def repo_folder(hub_dir: str | Path, repo_id: str) -> Path:
    """`<hub_dir>/<ORG>/<NAME>`, refused unless `repo_id` is a valid Hub id and the folder lies inside `hub_dir`."""
    problem = repo_id_problem(repo_id)
    if problem is not None:
        raise UserInputError(f"--repo_id {repo_id!r} is not a Hub model id (ORG/NAME): {problem}")
    target = Path(hub_dir) / repo_id
    if not target.resolve().is_relative_to(Path(hub_dir).resolve()):
        raise UserInputError(f"--repo_id {repo_id!r}: {target} resolves to {target.resolve()}, outside --hub_dir")
    return target


@dataclass
class RepoChanges:
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # the user's own files, not written by a push

    def summary(self) -> str:
        parts = [
            f"{label}: {', '.join(names)}"
            for label, names in (("added", self.added), ("modified", self.modified), ("removed", self.removed))
            if names
        ]
        text = "; ".join(parts) or "no changes"
        if self.kept:
            text += f" (kept your own files: {', '.join(self.kept)})"
        return text


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sync_folder(staging: Path, target: Path) -> RepoChanges:
    """Move the files of `staging` (one level) into `target`, each with an atomic rename, and remove the files a
    previous push wrote that this one does not (`is_owned`); every other file in `target` is left alone."""
    target.mkdir(parents=True, exist_ok=True)
    new = {p.name: p for p in staging.iterdir() if p.is_file()}
    present = {p.name: p for p in target.iterdir() if p.is_file() or p.is_symlink()}
    old = {name: path for name, path in present.items() if is_pushed_file(path)}
    changes = RepoChanges(kept=sorted(name for name in present if name not in old and name not in new))
    for name in new:
        # Bugs, not the user's mistakes: every staged file must be one a later push owns, and none may replace a
        # file of the user's (the caller leaves out the `users_files`).
        if not is_pushed_file(new[name]):
            raise AssertionError(f"{name} is written to the hub folder but not listed in OWNED_FILES or unmarked")
        if name in present and name not in old:
            raise AssertionError(f"{name} in {target} is the user's, but the push staged its own")
    for name, path in sorted(new.items()):
        if name not in old:
            changes.added.append(name)
        elif old[name].is_symlink() or file_digest(old[name]) != file_digest(path):
            changes.modified.append(name)
        else:
            changes.unchanged.append(name)
            continue
        os.replace(path, target / name)
    for name in sorted(set(old) - set(new)):
        (target / name).unlink()
        changes.removed.append(name)
    return changes


def sample_picture(model: DDRNetForSemanticSegmentation, image_path: Path, palette: np.ndarray) -> np.ndarray:
    """The image, its predicted mask and their blend, side by side, in the dataset's colours."""
    image = read_rgb_image(image_path)
    prediction = predict_classes(model.eval(), image[None])[0]
    return np.concatenate([image, colorize(prediction, palette), overlay(image, prediction, palette=palette)], axis=1)


def example_pictures(paths: Sequence[str | Path]) -> list[Image.Image]:
    """The demo's example images, read (a `UserInputError` names a bad file) and scaled down to `EXAMPLE_MAX_SIDE`;
    the same file given twice counts once."""
    unique = list(dict.fromkeys(Path(p).resolve() for p in paths))
    if len(unique) > MAX_EXAMPLE_IMAGES:
        raise UserInputError(
            f"{len(unique)} example images (--sample_image and --example_images): at most {MAX_EXAMPLE_IMAGES}, "
            "to keep the repo small"
        )
    pictures = []
    for path in unique:
        picture = Image.fromarray(read_rgb_image(path))
        scale = EXAMPLE_MAX_SIDE / max(picture.size)
        if scale < 1:
            size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
            picture = picture.resize(size, Image.Resampling.LANCZOS)
        pictures.append(picture)
    return pictures


def publish(
    model_dir: str | Path,
    hub_dir: str | Path,
    repo_id: str,
    sample_image: str | Path | None = None,
    example_images: Sequence[str | Path] = (),
) -> tuple[Path, RepoChanges]:
    """Write `<hub_dir>/<repo_id>/` from a saved model folder; return the folder and what changed in it.

    Besides the model and its card, the folder gets the Gradio demo: app.py, requirements.txt and the example
    images (`sample_image` first, then `example_images`). Everything is read and checked before the hub folder is
    touched. The new files are staged in a fresh temporary folder beside the repo folder (removed afterwards), then
    moved in one by one; files of the repo folder that no push writes (`is_pushed_file`) are kept, and an app.py or
    requirements.txt of the user's is neither replaced nor removed.
    """
    model_dir = Path(model_dir)
    target = repo_folder(hub_dir, repo_id)
    model = load_trained_model(model_dir)
    processor_path = model_dir / PROCESSOR_FILE
    if processor_path.is_file():
        read_json_file(processor_path)  # a syntax error is named with its file and line
        processor = DDRNetImageProcessor.from_pretrained(model_dir)
    else:
        processor = DDRNetImageProcessor(align_corners=model.config.align_corners)
    results_path = model_dir / EVAL_RESULTS_FILE
    results = read_json(results_path)
    if results is not None:
        results = check_eval_results(results, results_path, model)
    training = read_json(model_dir / TRAINING_ARGS_FILE)
    palette = model_palette(model_dir, model.config.id2label)
    picture = sample_picture(model, Path(sample_image), palette) if sample_image is not None else None
    examples = example_pictures([*([sample_image] if sample_image is not None else []), *example_images])
    if target.exists() and not target.is_dir():
        raise UserInputError(f"--repo_id {repo_id}: {target} exists and is not a folder")

    with staging_folder(target) as staging, full_disk_named(target.parent):
        model.config.auto_map = dict(MODEL_AUTO_MAP)
        model.save_pretrained(staging, safe_serialization=True)
        processor.auto_map = dict(PROCESSOR_AUTO_MAP)
        processor.save_pretrained(staging)
        for name in REMOTE_CODE_FILES:
            shutil.copyfile(MODEL_PACKAGE_DIR / name, staging / name)
        labels = read_json(model_dir / LABELS_FILE)
        for name, data in ((EVAL_RESULTS_FILE, results), (TRAINING_ARGS_FILE, training), (LABELS_FILE, labels)):
            if data is not None:
                (staging / name).write_text(json_text(data))
        if picture is not None:
            Image.fromarray(picture).save(staging / SAMPLE_IMAGE)
        for number, example in enumerate(examples, start=1):
            example.save(staging / EXAMPLE_IMAGE.format(number), quality=EXAMPLE_JPEG_QUALITY)
        keep = users_files(target) if target.is_dir() else set()
        if APP_FILE not in keep:
            shutil.copyfile(APP_TEMPLATE, staging / APP_FILE)
        if REQUIREMENTS_FILE not in keep:
            (staging / REQUIREMENTS_FILE).write_text(requirements_text())
        model_card(repo_id, model, results, training, picture is not None).save(staging / "README.md")
        changes = sync_folder(staging, target)
    return target, changes
