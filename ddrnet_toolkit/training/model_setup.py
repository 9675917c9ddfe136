"""The network a run trains and the record a model card reports of it.

A run starts a new network of a variant, or a saved model; a saved model trained on other classes keeps its
backbone and starts its heads afresh when asked to. The loss settings are part of the config, so they are given
when the model is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets
from accelerate.logging import get_logger

from modeling_ddrnet import VARIANTS, DDRNetConfig, DDRNetForSemanticSegmentation
from modeling_ddrnet.configuration_ddrnet import NAMED_CLASS_WEIGHTS

from ..data.class_weights import FORMULA as CLASS_WEIGHTS_FORMULA
from ..data.class_weights import count_label_pixels, weights_from_counts
from ..data.selection import SelectedDataset
from ..errors import UserInputError
from ..model_folder import check_model_folder

logger = get_logger(__name__)
DEFAULT_VARIANT = "ddrnet-23-slim"
# Recorded only when a teacher is given.
DISTILLATION_OPTIONS = ("teacher_model_name_or_path", "distillation", "distillation_weight", "distillation_temperature")
# What a model card reports of a run's options.
RECORDED_OPTIONS = (
    "variant", "model_name_or_path", "learning_rate", "momentum", "weight_decay", "poly_power",
    "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs", "max_train_steps",
    "crop_size", "base_size", "scale_range", "loss", "seed", "mixed_precision", "train_split",
    "ema_decay", "warmup_steps", "head_lr_multiplier", "rare_class_probability", "color_jitter",
    *DISTILLATION_OPTIONS,
)  # fmt: skip


def class_weights_choice(choice: str | None, dataset: SelectedDataset) -> str:
    """The default is the Cityscapes recipe's weights on Cityscapes, none elsewhere."""
    return choice or ("cityscapes" if dataset.is_cityscapes else "none")


def resolve_class_weights(choice: str | None, dataset: SelectedDataset, train_split: datasets.Dataset):
    """The loss weight per class: a named set, `auto` from the training labels' pixel shares, or none."""
    choice = class_weights_choice(choice, dataset)
    if choice == "none":
        return None
    if choice == "auto":
        weights = weights_from_counts(count_label_pixels(train_split, dataset.label_space.num_labels))
        logger.info(f"Class weights from the training labels ({CLASS_WEIGHTS_FORMULA}): {weights}")
        return weights
    if not dataset.is_cityscapes:
        raise UserInputError(
            f"--class_weights {choice} weighs the Cityscapes classes, and {dataset.name} has other classes: "
            "use auto or none"
        )
    return list(NAMED_CLASS_WEIGHTS[choice])


def build_model(
    dataset: SelectedDataset,
    *,
    class_weights: list[float] | None,
    loss_type: str = "ohem",
    ohem_min_kept: int | None = None,
    variant: str | None = None,
    model_name_or_path: str | Path | None = None,
    ignore_mismatched_sizes: bool = False,
) -> DDRNetForSemanticSegmentation:
    """A new network of `variant` (23-slim by default), or the saved model at `model_name_or_path`, for the
    dataset's classes and with the given loss settings (`loss_type`: one of `LOSS_TYPES`)."""
    label_space = dataset.label_space
    settings = {
        "id2label": label_space.id2label,
        "label2id": {name: index for index, name in label_space.id2label.items()},
        "semantic_loss_ignore_index": label_space.ignore_index,
        "class_weights": class_weights,
        "loss_type": loss_type,
    }
    if ohem_min_kept is not None:
        settings["ohem_min_kept"] = ohem_min_kept
    if not model_name_or_path:
        return DDRNetForSemanticSegmentation(DDRNetConfig.from_variant(variant or DEFAULT_VARIANT, **settings))
    path = check_model_folder(model_name_or_path)
    stored = DDRNetConfig.from_pretrained(path)
    if stored.num_labels != label_space.num_labels and not ignore_mismatched_sizes:
        raise UserInputError(
            f"--model_name_or_path {path} predicts {stored.num_labels} classes but {dataset.name} has "
            f"{label_space.num_labels}; pass --ignore_mismatched_sizes to start the heads afresh."
        )
    model, info = DDRNetForSemanticSegmentation.from_pretrained(
        path, ignore_mismatched_sizes=ignore_mismatched_sizes, output_loading_info=True, **settings
    )
    fresh = [key[0] if isinstance(key, tuple) else key for key in info["mismatched_keys"]] + list(info["missing_keys"])
    if fresh:
        modules = sorted({key.rsplit(".", 1)[0] for key in fresh})
        kept = len(model.state_dict()) - len(fresh)
        logger.info(f"Started afresh for {label_space.num_labels} classes: {', '.join(modules)}; {kept} tensors kept")
    return model


def architecture_of(config: DDRNetConfig) -> dict:
    """The configuration fields that decide the shapes of the weights."""
    return {name: getattr(config, name) for name in (*VARIANTS[DEFAULT_VARIANT], "num_labels", "use_auxiliary_head")}


def training_record(
    options: Mapping[str, Any], dataset: SelectedDataset, config: DDRNetConfig, effective_batch: int
) -> dict:
    """The hyperparameters a model card reports (`RECORDED_OPTIONS` of the run's `options`, its recipe file as
    `recipe`; the distillation options only with a teacher), with the resolved class weights and how they were made."""
    record = {"recipe": options.get("config"), **{key: options[key] for key in RECORDED_OPTIONS}}
    if record["teacher_model_name_or_path"] is None:
        for key in DISTILLATION_OPTIONS:
            del record[key]
    record.update(dataset=dataset.name, num_labels=config.num_labels, effective_batch_size=effective_batch)
    record["class_weights"] = class_weights_choice(options["class_weights"], dataset)
    if record["class_weights"] == "auto":
        record.update(class_weights_formula=CLASS_WEIGHTS_FORMULA, class_weight_values=config.class_weights)
    return record
