"""Loading saved models for evaluation, prediction, export and publishing: a folder that cannot give the model
it claims to hold (missing, not a DDRNet, weights missing or not finite) is refused with one clear message
instead of being scored as a randomly initialized network."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError

from modeling_ddrnet import DDRNetConfig, DDRNetForSemanticSegmentation

from .cli import UserInputError, first_line


def read_json_file(path: Path, what: str = "") -> dict:
    """A JSON object from `path`, or a `UserInputError` naming the file and the position of a syntax error."""
    try:
        data = json.loads(path.read_text())
    except UnicodeDecodeError as error:
        raise UserInputError(f"{path}: not a UTF-8 text file ({error.reason})") from error
    except json.JSONDecodeError as error:
        raise UserInputError(
            f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from error
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a JSON object{what}, got {type(data).__name__}")
    return data


def check_model_folder(path: str | Path) -> Path:
    """The folder of a saved DDRNet: it exists, holds a readable DDRNet `config.json` and safetensors weights."""
    folder = Path(path)
    if not folder.is_dir():
        raise UserInputError(f"model folder not found: {folder} (expected a folder written by save_pretrained)")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise UserInputError(f"{folder} holds no config.json: not a saved model folder")
    model_type = read_json_file(config_file).get("model_type")
    if model_type != DDRNetConfig.model_type:
        raise UserInputError(
            f"{config_file}: model_type is {model_type!r}, not {DDRNetConfig.model_type!r}: this folder holds "
            "another architecture"
        )
    if not (folder / "model.safetensors").is_file():
        raise UserInputError(f"{folder} holds no model.safetensors (weights are read from safetensors only)")
    return folder


def load_trained_model(path: str | Path) -> DDRNetForSemanticSegmentation:
    """A trained `DDRNetForSemanticSegmentation` from a saved folder, in eval mode, with every inference weight
    loaded from the checkpoint and finite. (The auxiliary head is used in training only and may be absent.)"""
    folder = check_model_folder(path)
    try:
        model, info = DDRNetForSemanticSegmentation.from_pretrained(folder, output_loading_info=True)
    except (RuntimeError, SafetensorError) as error:  # truncated file, or weights of another shape
        raise UserInputError(f"{folder / 'model.safetensors'} cannot be loaded: {first_line(error)}") from error
    missing = [key for key in info["missing_keys"] if not key.startswith("aux_head.")]
    if missing or info["mismatched_keys"]:
        problems = missing + [str(key[0]) if isinstance(key, tuple) else str(key) for key in info["mismatched_keys"]]
        raise UserInputError(
            f"{folder / 'model.safetensors'} lacks {len(problems)} weight(s) of the network (e.g. "
            f"{', '.join(problems[:3])}): it is not a complete trained model"
        )
    check_finite(model, folder)
    return model.eval()


def check_finite(model: torch.nn.Module, where: str | Path) -> None:
    """Refuse weights or BatchNorm statistics that hold NaN or infinity."""
    state = model.state_dict()
    bad = [name for name, tensor in state.items() if tensor.is_floating_point() and not tensor.isfinite().all()]
    if bad:
        raise UserInputError(f"{where}: {len(bad)} tensor(s) hold NaN or infinity (e.g. {', '.join(bad[:3])})")
