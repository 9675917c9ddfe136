"""The model card of a published DDRNet: a model-index from its evaluation results, how to use it, the per-class
IoU, the training hyperparameters, and the front matter that makes its folder a Gradio Space."""

from __future__ import annotations

import math
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import EvalResult

from modeling_ddrnet import DDRNetForSemanticSegmentation

from ..errors import UserInputError
from ..evaluation.report import percent
from ..model_folder import class_names
from .space_app import APP_FILE, GRADIO_SDK_VERSION, REQUIREMENTS_FILE

SAMPLE_IMAGE = "sample_prediction.png"
# Characters of names and values that Markdown or HTML would read as markup, in a card's text and tables.
_MARKUP = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|", "`": "\\`"}


def text(value) -> str:
    """A name or value from a model's files as plain text on one line of the card: markup characters escaped, line
    breaks (which could end a table or open a front-matter fence) folded into spaces."""
    folded = " ".join(str(value).split())
    return "".join(_MARKUP.get(character, character) for character in folded)


CITATION = """@article{hong2021deep,
  title={Deep Dual-resolution Networks for Real-time and Accurate Semantic Segmentation of Road Scenes},
  author={Hong, Yuanduo and Pan, Huihui and Sun, Weichao and Jia, Yisong},
  journal={arXiv preprint arXiv:2101.06085},
  year={2021}
}"""


def model_card(
    repo_id: str, model: DDRNetForSemanticSegmentation, results: dict | None, training: dict | None, has_sample: bool
) -> ModelCard:
    """A model card with a model-index (when evaluation results exist), hyperparameters and per-class IoU, and the
    front matter of a Gradio Space (`sdk`, `sdk_version`, `app_file`), so the repo also runs its demo as a Space."""
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
        tags=["ddrnet", "semantic-segmentation", "real-time", dataset_name],
        datasets=[dataset_name],
        metrics=["mean_iou"],
        model_name=repo_id,
        eval_results=eval_results,
        # Space settings: a model repo ignores them, a Space copy of the folder installs this Gradio and runs app.py.
        sdk="gradio",
        sdk_version=GRADIO_SDK_VERSION,
        app_file=APP_FILE,
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
        "## Demo",
        "",
        f"`pip install -r {REQUIREMENTS_FILE} && python {APP_FILE}` in this folder serves a page on "
        "http://127.0.0.1:7860: upload an image to see the overlay, the colour mask and the share of each class. "
        "The folder also runs as a Gradio Space.",
        "",
    ]
    if has_sample:
        lines += ["## Sample prediction", "", f"![image, prediction, overlay]({SAMPLE_IMAGE})", ""]
    if results and results.get("per_category_iou"):
        lines += [
            "## Evaluation",
            "",
            f"{text(dataset_name)}, split `{text(results.get('split', 'validation'))}`: "
            f"mean IoU **{percent(results.get('mean_iou'))}**, mean accuracy "
            f"{percent(results.get('mean_accuracy'))}, overall accuracy "
            f"{percent(results.get('overall_accuracy'))}.",
            "",
            "| class | IoU |",
            "|---|---|",
        ]
        for name, value in results["per_category_iou"].items():
            lines.append(f"| {text(name)} | {percent(value)} |")
        lines.append("")
    if training:
        lines += ["## Training hyperparameters", ""]
        if training.get("teacher_model_name_or_path"):
            lines += [
                f"Distilled from the teacher `{text(training['teacher_model_name_or_path'])}` "
                f"({text(training.get('distillation'))}-wise, weight {text(training.get('distillation_weight'))}, "
                f"temperature {text(training.get('distillation_temperature'))}) on top of its own loss.",
                "",
            ]
        lines += ["| hyperparameter | value |", "|---|---|"]
        lines += [f"| {text(key)} | {text(value)} |" for key, value in training.items() if value is not None]
        lines.append("")
    lines += [
        "## Intended use and limitations",
        "",
        f"Semantic segmentation into the {config.num_labels} classes of {text(dataset_name)}: "
        f"{', '.join(map(text, class_names(config)))}. The model knows only what its "
        "training data showed: other viewpoints, places, weather or sensors lower its accuracy, and a model trained "
        "on synthetic scenes is a demonstration, not a road-scene model. It is not a safety component: do not use "
        "it alone for decisions that affect people.",
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return ModelCard.from_template(card_data, template_str="---\n{{ card_data }}\n---\n\n" + "\n".join(lines))


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_eval_results(results: dict, path: Path, model: DDRNetForSemanticSegmentation) -> dict:
    """`eval_results.json` as the card needs it: numbers or null (NaN becomes null), and per-class IoU (or accuracy)
    as `{class name: value}`; a list, as `evaluate`'s mean_iou returns it, is named with the model's id2label."""
    results = dict(results)
    for key in ("mean_iou", "mean_accuracy", "overall_accuracy"):
        value = results.get(key)
        if value is not None and not is_number(value):
            raise UserInputError(f"{path}: {key} must be a number or null, got {value!r}")
        if is_number(value) and not math.isfinite(value):
            results[key] = None
    names = class_names(model.config)
    for key in ("per_category_iou", "per_category_accuracy"):
        values = results.get(key)
        if values is None:
            continue
        if isinstance(values, list):
            if len(values) != len(names):
                raise UserInputError(
                    f"{path}: {key} holds {len(values)} values, but the model has {len(names)} classes"
                )
            values = dict(zip(names, values, strict=True))
        if not isinstance(values, dict):
            raise UserInputError(f"{path}: {key} must map class names to numbers, got {type(values).__name__}")
        for name, value in values.items():
            if value is not None and not is_number(value):
                raise UserInputError(f"{path}: {key}[{name!r}] must be a number or null, got {value!r}")
        results[key] = {
            name: (value if value is None or math.isfinite(value) else None) for name, value in values.items()
        }
    return results
