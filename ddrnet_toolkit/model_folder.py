"""The model folder: the files a saved DDRNet consists of, checking and loading one, and saving one atomically.

A folder that cannot give the model it claims to hold (missing, not a DDRNet, weights missing or not finite) is
refused with one clear message instead of being scored as a randomly initialized network. Training saves its
`best_model` and `last_model` as symbolic links to complete versions in `.model_versions/`: a new version is
written beside the old one and the link swapped in one rename, so a reader sees one whole model or the other.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from modeling_ddrnet import DDRNetConfig, DDRNetForSemanticSegmentation

from .errors import UserInputError, first_line
from .files import default_mode, full_disk_named, json_text, read_json_file

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PROCESSOR_FILE = "preprocessor_config.json"
EVAL_RESULTS_FILE = "eval_results.json"
TRAINING_ARGS_FILE = "training_args.json"
# The dataset's classes (names, colours, ignore value), written by training and read by predict and publishing.
LABELS_FILE = "labels.json"
# Every file a saved model may consist of: what replacing a model removes, and nothing else.
MODEL_FILES = frozenset(
    {
        CONFIG_FILE,
        WEIGHTS_FILE,
        "model.safetensors.index.json",
        "pytorch_model.bin",
        PROCESSOR_FILE,
        "generation_config.json",
        EVAL_RESULTS_FILE,
        TRAINING_ARGS_FILE,
        LABELS_FILE,
    }
)
SHARDED_WEIGHTS = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")
# The safetensors dtypes of weights.
FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64"})
# The model folders a training run writes into its output folder.
RUN_MODEL_FOLDERS = ("best_model", "last_model")
# Where `save_pretrained_atomically` keeps the versions that its links point to.
MODEL_VERSIONS = ".model_versions"


def is_model_file(name: str) -> bool:
    return name in MODEL_FILES or SHARDED_WEIGHTS.fullmatch(name) is not None


def model_files(folder: Path) -> list[Path]:
    """The files of `folder` that belong to a saved model (`is_model_file`), sorted."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p.is_file() or p.is_symlink()) and is_model_file(p.name))


def holds_a_model(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file() or (folder / WEIGHTS_FILE).is_file()


def check_not_a_model_file(path: str | Path, option: str) -> Path:
    """Refuse an output path that would replace a file of a saved model (its weights, configs, results), or that
    lies in a version a training run keeps and replaces (`.model_versions/`): a writer of other outputs never
    writes there."""
    path = Path(path)
    target = path.resolve()
    if is_model_file(target.name) and holds_a_model(target.parent):
        raise UserInputError(
            f"{option} {path} would replace {target.name} of the model in {target.parent}: write the output elsewhere"
        )
    if MODEL_VERSIONS in target.parts:
        raise UserInputError(
            f"{option} {path} lies in {target.parent}, a model version that its training run replaces: write the "
            "output elsewhere"
        )
    return path


def class_names(config: DDRNetConfig) -> list[str]:
    """The class names in class-id order (`id2label` keys may be ints or, read from JSON, strings)."""
    id2label = config.id2label
    return [str(id2label.get(i, id2label.get(str(i), f"class {i}"))) for i in range(config.num_labels)]


def check_model_folder(path: str | Path) -> Path:
    """The folder of a saved DDRNet: it exists, holds a readable DDRNet `config.json` and safetensors weights."""
    folder = Path(path)
    if not folder.is_dir():
        raise UserInputError(f"model folder not found: {folder} (expected a folder written by save_pretrained)")
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        models = [name for name in RUN_MODEL_FOLDERS if (folder / name / CONFIG_FILE).is_file()]
        if models:
            choices = " or ".join(str(folder / name) for name in models)
            raise UserInputError(f"{folder} is a training run's folder, not a model folder: give {choices}")
        raise UserInputError(f"{folder} holds no {CONFIG_FILE}: not a saved model folder")
    model_type = read_json_file(config_file).get("model_type")
    if model_type != DDRNetConfig.model_type:
        raise UserInputError(
            f"{config_file}: model_type is {model_type!r}, not {DDRNetConfig.model_type!r}: this folder holds "
            "another architecture"
        )
    if not (folder / WEIGHTS_FILE).is_file():
        raise UserInputError(f"{folder} holds no {WEIGHTS_FILE} (weights are read from safetensors only)")
    check_weight_dtypes(folder / WEIGHTS_FILE)
    return folder


def check_weight_dtypes(weights: Path) -> None:
    """Refuse weights stored in an integer or boolean type (loading would cast them to float without a word); only
    BatchNorm's step counters are integers."""
    try:
        with safe_open(weights, framework="pt") as handle:
            dtypes = {key: handle.get_slice(key).get_dtype() for key in handle.keys()}  # noqa: SIM118
    except (OSError, SafetensorError) as error:
        raise UserInputError(f"{weights} cannot be loaded: {first_line(error)}") from error
    wrong = [
        f"{key} ({dtype})"
        for key, dtype in dtypes.items()
        if dtype not in FLOAT_DTYPES and not key.endswith("num_batches_tracked")
    ]
    if wrong:
        raise UserInputError(
            f"{weights}: {len(wrong)} weight(s) are not stored as floating-point numbers (e.g. {', '.join(wrong[:3])})"
        )


def load_trained_model(path: str | Path) -> DDRNetForSemanticSegmentation:
    """A trained `DDRNetForSemanticSegmentation` from a saved folder, in eval mode, with every inference weight
    loaded from the checkpoint and finite. (The auxiliary head is used in training only and may be absent.)"""
    folder = check_model_folder(path)
    weights = folder / WEIGHTS_FILE
    try:
        model, info = DDRNetForSemanticSegmentation.from_pretrained(folder, output_loading_info=True)
    except (RuntimeError, SafetensorError) as error:  # truncated file, or weights of another shape
        raise UserInputError(f"{weights} cannot be loaded: {first_line(error)}") from error
    missing = [key for key in info["missing_keys"] if not key.startswith("aux_head.")]
    if missing or info["mismatched_keys"]:
        problems = missing + [str(key[0]) if isinstance(key, tuple) else str(key) for key in info["mismatched_keys"]]
        raise UserInputError(
            f"{weights} lacks {len(problems)} weight(s) of the network (e.g. {', '.join(problems[:3])}): it is not a "
            "complete trained model"
        )
    check_finite(model, folder)
    check_outputs_finite(model.eval(), folder)
    return model


def check_outputs_finite(model: DDRNetForSemanticSegmentation, where: str | Path) -> None:
    """Refuse a model whose finite weights still compute NaN or infinity (a negative BatchNorm variance, weights
    scaled to 1e30): what comes out is checked on a small image, not only what is stored."""
    variances = [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.BatchNorm2d) and (module.running_var < 0).any()
    ]
    if variances:
        raise UserInputError(
            f"{where}: negative BatchNorm variances in {len(variances)} layer(s) (e.g. {variances[0]})"
        )
    probe = torch.linspace(-2, 2, model.config.num_channels * 64 * 64).reshape(1, model.config.num_channels, 64, 64)
    with torch.no_grad():
        logits = model(pixel_values=probe).logits
    if not torch.isfinite(logits).all():
        raise UserInputError(f"{where}: the model computes NaN or infinite scores from finite weights")


def check_finite(model: torch.nn.Module, where: str | Path) -> None:
    """Refuse weights or BatchNorm statistics that hold NaN or infinity."""
    state = model.state_dict()
    bad = [name for name, tensor in state.items() if tensor.is_floating_point() and not tensor.isfinite().all()]
    if bad:
        raise UserInputError(f"{where}: {len(bad)} tensor(s) hold NaN or infinity (e.g. {', '.join(bad[:3])})")


def save_pretrained_atomically(model, image_processor, directory: str | Path, extra_json: dict[str, dict]) -> None:
    """Write a complete model folder beside the old one, then point `directory` (a symbolic link) at it with one
    atomic rename, and remove the old version. Readers of `directory` see the whole old or the whole new model.

    Only the link and `.model_versions/<name>-*` folders are ever replaced or removed; a real folder at
    `directory` (not written by this function) is refused.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_symlink():
        raise UserInputError(
            f"{directory} exists and was not written by this project's atomic save: move it away, or pass "
            "--overwrite_output_dir to replace the whole run"
        )
    versions = directory.parent / MODEL_VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    version = Path(tempfile.mkdtemp(prefix=f"{directory.name}-", dir=versions))
    os.chmod(version, default_mode(directory=True))
    try:
        with full_disk_named(directory.parent):
            model.save_pretrained(version, safe_serialization=True)
            image_processor.save_pretrained(version)
            for name, data in extra_json.items():  # the version is not yet visible: no need to write atomically
                (version / name).write_text(json_text(data))
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise
    link = versions / f"{version.name}.link"
    os.symlink(os.path.relpath(version, directory.parent), link)
    os.replace(link, directory)
    # Other versions of this folder, and any left by a run killed before its rename, are no longer referenced.
    for old in versions.glob(f"{directory.name}-*"):
        if old.is_symlink():
            old.unlink()
        elif old != version and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
