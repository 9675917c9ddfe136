"""Publish a trained model as a Hub-style repository folder: weights, configs, remote code and a model card."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import EvalResult
from PIL import Image

import modeling_ddrnet
from modeling_ddrnet import DDRNetForSemanticSegmentation, DDRNetImageProcessor

from .cli import UserInputError
from .data import normalize
from .inference import predict_probabilities
from .model_loading import load_trained_model, read_json_file
from .visualization import colorize, overlay

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
SAMPLE_IMAGE = "sample_prediction.png"

CITATION = """@article{hong2021deep,
  title={Deep Dual-resolution Networks for Real-time and Accurate Semantic Segmentation of Road Scenes},
  author={Hong, Yuanduo and Pan, Huihui and Sun, Weichao and Jia, Yisong},
  journal={arXiv preprint arXiv:2101.06085},
  year={2021}
}"""


@dataclass
class RepoChanges:
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not (self.added or self.modified or self.removed):
            return "no changes"
        parts = [
            f"{label}: {', '.join(names)}"
            for label, names in (("added", self.added), ("modified", self.modified), ("removed", self.removed))
            if names
        ]
        return "; ".join(parts)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sync_folder(staging: Path, target: Path) -> RepoChanges:
    """Make `target` hold exactly the files of `staging` (one level), each moved in with an atomic rename."""
    target.mkdir(parents=True, exist_ok=True)
    new = {p.name: p for p in staging.iterdir() if p.is_file()}
    old = {p.name: p for p in target.iterdir() if p.is_file()}
    changes = RepoChanges()
    for name, path in sorted(new.items()):
        if name not in old:
            changes.added.append(name)
        elif file_digest(old[name]) != file_digest(path):
            changes.modified.append(name)
        else:
            changes.unchanged.append(name)
            continue
        os.replace(path, target / name)
    for name in sorted(set(old) - set(new)):
        (target / name).unlink()
        changes.removed.append(name)
    return changes


def model_card(
    repo_id: str, model: DDRNetForSemanticSegmentation, results: dict | None, training: dict | None, has_sample: bool
) -> ModelCard:
    """A model card with a model-index (when evaluation results exist), hyperparameters and per-class IoU."""
    dataset_name = (results or {}).get("dataset", "cityscapes")
    eval_results = None
    if results and results.get("mean_iou") is not None:
        eval_results = [
            EvalResult(
                task_type="image-segmentation",
                task_name="Semantic Segmentation",
                dataset_type=dataset_name,
                dataset_name=dataset_name,
                dataset_split=results.get("split", "validation"),
                metric_type="mean_iou",
                metric_name="Mean IoU",
                metric_value=round(float(results["mean_iou"]), 4),
            )
        ]
    card_data = ModelCardData(
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag="image-segmentation",
        tags=["ddrnet", "semantic-segmentation", "real-time", "cityscapes"],
        datasets=[dataset_name],
        metrics=["mean_iou"],
        model_name=repo_id,
        eval_results=eval_results,
    )
    config = model.config
    parameters = sum(p.numel() for p in model.parameters()) / 1e6
    lines = [
        f"# {repo_id}",
        "",
        f"DDRNet (Deep Dual-resolution Network) for real-time semantic segmentation of road scenes, "
        f"{parameters:.2f} M parameters (base width {config.base_channels}, "
        f"{len(config.context_channel_multipliers)} bilateral stages), {config.num_labels} classes.",
        "",
        "A high-resolution detail branch (1/8 of the input) and a low-resolution context branch exchange "
        "features after every stage; a pyramid pooling module (DAPPM) enlarges the context before both branches "
        "are summed and classified. Logits come out at 1/8 of the input resolution.",
        "",
        "## How to use",
        "",
        "```python",
        "from PIL import Image",
        "from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation",
        "",
        f'processor = AutoImageProcessor.from_pretrained("{repo_id}", trust_remote_code=True)',
        f'model = AutoModelForSemanticSegmentation.from_pretrained("{repo_id}", trust_remote_code=True)',
        'image = Image.open("street.png")',
        'outputs = model(**processor(image, return_tensors="pt"))',
        "segmentation = processor.post_process_semantic_segmentation(outputs, target_sizes=[image.size[::-1]])[0]",
        "```",
        "",
        "With the `modeling_ddrnet` package installed (`import modeling_ddrnet`), no remote code is needed.",
        "",
    ]
    if has_sample:
        lines += ["## Sample prediction", "", f"![image, prediction, overlay]({SAMPLE_IMAGE})", ""]
    if results and results.get("per_category_iou"):
        lines += [
            "## Evaluation",
            "",
            f"{dataset_name}, split `{results.get('split', 'validation')}`: "
            f"mean IoU **{100 * results['mean_iou']:.2f}**, mean accuracy "
            f"{100 * (results.get('mean_accuracy') or 0):.2f}, overall accuracy "
            f"{100 * (results.get('overall_accuracy') or 0):.2f}.",
            "",
            "| class | IoU |",
            "|---|---|",
        ]
        for name, value in results["per_category_iou"].items():
            lines.append(f"| {name} | {'n/a' if value is None else f'{100 * value:.2f}'} |")
        lines.append("")
    if training:
        lines += ["## Training hyperparameters", "", "| hyperparameter | value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in training.items() if value is not None]
        lines.append("")
    lines += [
        "## Intended use and limitations",
        "",
        "Semantic segmentation of urban street scenes seen from a vehicle, in the 19 Cityscapes classes. The model "
        "knows only what its training data showed: other viewpoints, countries, weather or sensors lower its "
        "accuracy, and a model trained on synthetic scenes is a demonstration, not a road-scene model. It is not "
        "a safety component: do not use it alone for decisions that affect people.",
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return ModelCard.from_template(card_data, template_str="---\n{{ card_data }}\n---\n\n" + "\n".join(lines))


def sample_picture(model: DDRNetForSemanticSegmentation, image_path: Path) -> np.ndarray:
    """The image, its predicted mask and their blend, side by side."""
    image = np.asarray(Image.open(image_path).convert("RGB"))
    with torch.no_grad():
        pixel_values = torch.from_numpy(normalize(image))[None]
        prediction = predict_probabilities(model.eval(), pixel_values).argmax(1)[0].byte().numpy()
    return np.concatenate([image, colorize(prediction), overlay(image, prediction)], axis=1)


def read_json(path: Path) -> dict | None:
    return read_json_file(path) if path.is_file() else None


def publish(
    model_dir: str | Path, hub_dir: str | Path, repo_id: str, sample_image: str | Path | None = None
) -> tuple[Path, RepoChanges]:
    """Write `<hub_dir>/<repo_id>/` from a saved model folder; return the folder and what changed in it."""
    model_dir = Path(model_dir)
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise UserInputError(f"--repo_id must look like ORG/NAME, got {repo_id!r}")
    target = Path(hub_dir) / repo_id
    staging = target.with_name(target.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        model = load_trained_model(model_dir)
        model.config.auto_map = dict(MODEL_AUTO_MAP)
        model.save_pretrained(staging, safe_serialization=True)
        processor_path = model_dir / "preprocessor_config.json"
        processor = (
            DDRNetImageProcessor.from_pretrained(model_dir) if processor_path.is_file() else DDRNetImageProcessor()
        )
        processor.auto_map = dict(PROCESSOR_AUTO_MAP)
        processor.save_pretrained(staging)
        for name in REMOTE_CODE_FILES:
            shutil.copyfile(MODEL_PACKAGE_DIR / name, staging / name)
        results = read_json(model_dir / "eval_results.json")
        training = read_json(model_dir / "training_args.json")
        for name, data in (("eval_results.json", results), ("training_args.json", training)):
            if data is not None:
                (staging / name).write_text(json.dumps(data, indent=2) + "\n")
        if sample_image is not None:
            Image.fromarray(sample_picture(model, Path(sample_image))).save(staging / SAMPLE_IMAGE)
        model_card(repo_id, model, results, training, sample_image is not None).save(staging / "README.md")
        changes = sync_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, changes
