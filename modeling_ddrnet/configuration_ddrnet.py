"""DDRNet model configuration."""

from __future__ import annotations

import math
from typing import Any

import torch
from transformers import PreTrainedConfig
from transformers.utils import logging

logger = logging.get_logger(__name__)

# The 19 Cityscapes evaluation classes, in train-id order.
CITYSCAPES_CLASS_NAMES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip

# Per-class cross-entropy weights of the original Cityscapes recipe (train-id order), shared by
# DDRNet.pytorch, PIDNet and mmsegmentation.
CITYSCAPES_CLASS_WEIGHTS = (
    0.8373, 0.918, 0.866, 1.0345, 1.0166, 0.9969, 0.9754, 1.0489, 0.8786, 1.0023,
    0.9539, 0.9843, 1.1116, 0.9037, 1.0865, 1.0955, 1.0865, 1.1529, 1.0507,
)  # fmt: skip

NAMED_CLASS_WEIGHTS = {"cityscapes": CITYSCAPES_CLASS_WEIGHTS}

# The losses `DDRNetForSemanticSegmentation` trains with (`loss_ddrnet.segmentation_loss`).
LOSS_TYPES = ("ohem", "cross_entropy", "dice_ce_edge")

# The published variants differ only in widths and depths (Hong et al. 2021, Table 1 and the official code).
VARIANTS: dict[str, dict[str, Any]] = {
    "ddrnet-23-slim": {
        "base_channels": 32,
        "stem_depths": [2, 2],
        "context_channel_multipliers": [4, 8],
        "context_depths": [2, 2],
        "detail_depths": [2, 2],
        "spp_channels": 128,
        "head_channels": 64,
    },
    "ddrnet-23": {
        "base_channels": 64,
        "stem_depths": [2, 2],
        "context_channel_multipliers": [4, 8],
        "context_depths": [2, 2],
        "detail_depths": [2, 2],
        "spp_channels": 128,
        "head_channels": 128,
    },
    "ddrnet-39": {
        "base_channels": 64,
        "stem_depths": [3, 4],
        "context_channel_multipliers": [4, 4, 8],
        "context_depths": [3, 3, 3],
        "detail_depths": [3, 3, 3],
        "spp_channels": 128,
        "head_channels": 256,
    },
}


class DDRNetConfigError(ValueError):
    """A configuration value out of its valid range; the message names the field."""


# Bounds far above any DDRNet, so that a mistyped value fails at once instead of building for minutes.
MAX_DEPTH = 64
MAX_SIZES = {
    "base_channels": 4096,
    "spp_channels": 4096,
    "head_channels": 4096,
    "num_channels": 64,
    "ohem_min_kept": 2**40,
    "num_labels": 65536,
}


def as_list(name: str, values: Any, default: list[int]) -> list:
    """A list field's value (a tuple from Python, a list from JSON), or a `DDRNetConfigError` naming the field."""
    if values is None:
        return list(default)
    if not isinstance(values, list | tuple):
        raise DDRNetConfigError(f"DDRNetConfig: invalid {name}={values!r}; expected a list of integers.")
    return list(values)


class DDRNetConfig(PreTrainedConfig):
    r"""
    Configuration of a DDRNet (Deep Dual-resolution Network) for semantic segmentation.

    The network keeps two branches after the stem: a *detail* branch at 1/8 of the input resolution with
    `2 * base_channels` channels, and a *context* branch that keeps halving its resolution. After every bilateral
    stage the branches exchange information (bilateral fusion). The context branch ends in a DAPPM pyramid
    pooling module whose output is added to the detail branch before the segmentation head.

    Args:
        base_channels (`int`, *optional*, defaults to 32):
            Width of the stem ("planes" in the original code). The detail branch has `2 * base_channels` channels.
        stem_depths (`list[int]`, *optional*, defaults to `[2, 2]`):
            Number of basic blocks at 1/4 and 1/8 resolution, before the branches split.
        context_channel_multipliers (`list[int]`, *optional*, defaults to `[4, 8]`):
            Width of the context branch in each bilateral stage, as a multiple of `base_channels`. A stage whose
            width grows halves the resolution; the multiplier must be 4 or 8 (1/16 or 1/32 resolution).
        context_depths (`list[int]`, *optional*, defaults to `[2, 2]`):
            Basic blocks of the context branch in each bilateral stage.
        detail_depths (`list[int]`, *optional*, defaults to `[2, 2]`):
            Basic blocks of the detail branch in each bilateral stage.
        spp_channels (`int`, *optional*, defaults to 128):
            Width of each DAPPM branch.
        head_channels (`int`, *optional*, defaults to 64):
            Width of the hidden layer of the segmentation heads.
        use_auxiliary_head (`bool`, *optional*, defaults to `True`):
            Whether to build the auxiliary head on the detail branch; it runs in training mode only.
        auxiliary_loss_weight (`float`, *optional*, defaults to 0.4):
            Weight of the auxiliary loss in the total loss.
        loss_type (`str`, *optional*, defaults to `"ohem"`):
            The training loss of each head: `"ohem"` (cross entropy over the hardest pixels only, the paper's),
            `"cross_entropy"` (over every pixel), or `"dice_ce_edge"` (cross entropy, cross entropy on label
            boundaries and Dice, super-gradients' recipe). Older configs' `use_ohem` switch maps onto the first two.
        ohem_threshold (`float`, *optional*, defaults to 0.9):
            Pixels whose probability of the true class is below this value are kept (`"ohem"`).
        ohem_min_kept (`int`, *optional*, defaults to 131072):
            At least this many pixels per batch are kept (`"ohem"`).
        edge_kernel_size (`int`, *optional*, defaults to 5):
            Side of the square within which another label makes a pixel a boundary pixel (`"dice_ce_edge"`; odd).
        class_weights (`list[float]` or `str`, *optional*):
            Cross-entropy weight of each class, or the name of a known set (`"cityscapes"`).
        semantic_loss_ignore_index (`int`, *optional*, defaults to 255):
            Label value that the loss and the metrics ignore.
        align_corners (`bool`, *optional*, defaults to `False`):
            `align_corners` of every bilinear interpolation; the original weights need `False`.
        batch_norm_momentum (`float`, *optional*, defaults to 0.1):
            Momentum of every batch normalization layer.
        batch_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of every batch normalization layer.
        num_channels (`int`, *optional*, defaults to 3):
            Number of input channels.

    Example:

    ```python
    >>> from modeling_ddrnet import DDRNetConfig, DDRNetForSemanticSegmentation

    >>> # DDRNet-23-slim for the 19 Cityscapes classes (the default labels)
    >>> configuration = DDRNetConfig.from_variant("ddrnet-23-slim")
    >>> model = DDRNetForSemanticSegmentation(configuration)
    >>> model.config.num_labels, model.config.base_channels
    (19, 32)

    >>> # the same network for five classes of your own, trained with plain cross entropy
    >>> configuration = DDRNetConfig.from_variant(
    ...     "ddrnet-23-slim",
    ...     id2label={0: "road", 1: "car", 2: "person", 3: "sky", 4: "other"},
    ...     loss_type="cross_entropy",
    ... )
    >>> configuration.num_labels
    5
    ```
    """

    model_type = "ddrnet"

    def __init__(
        self,
        base_channels: int = 32,
        stem_depths: list[int] | None = None,
        context_channel_multipliers: list[int] | None = None,
        context_depths: list[int] | None = None,
        detail_depths: list[int] | None = None,
        spp_channels: int = 128,
        head_channels: int = 64,
        use_auxiliary_head: bool = True,
        auxiliary_loss_weight: float = 0.4,
        loss_type: str = "ohem",
        ohem_threshold: float = 0.9,
        ohem_min_kept: int = 131072,
        edge_kernel_size: int = 5,
        class_weights: list[float] | str | None = None,
        semantic_loss_ignore_index: int = 255,
        align_corners: bool = False,
        batch_norm_momentum: float = 0.1,
        batch_norm_eps: float = 1e-5,
        num_channels: int = 3,
        **kwargs,
    ):
        if "id2label" not in kwargs and "num_labels" not in kwargs:
            kwargs["id2label"] = dict(enumerate(CITYSCAPES_CLASS_NAMES))
            kwargs.setdefault("label2id", {name: index for index, name in enumerate(CITYSCAPES_CLASS_NAMES)})
        num_labels = kwargs.get("num_labels")
        if num_labels is not None and len(kwargs.get("id2label") or {}) not in (0, num_labels):
            # `from_pretrained(path, num_labels=N)`: a new label set replaces the stored one, and the stored
            # names and class weights, which describe the old classes, go with it.
            kwargs.pop("id2label")
            kwargs.pop("label2id", None)
            if isinstance(class_weights, list | tuple) and len(class_weights) != num_labels:
                logger.warning(
                    f"Dropping the {len(class_weights)} stored class_weights: the model now has {num_labels} labels."
                )
                class_weights = None
        for key in ("dtype", "torch_dtype"):
            dtype = kwargs.get(key)
            if isinstance(dtype, str) and dtype != "auto" and not isinstance(getattr(torch, dtype, None), torch.dtype):
                raise DDRNetConfigError(
                    f"DDRNetConfig: invalid {key}={dtype!r}; expected the name of a torch dtype (float32, float16, "
                    "bfloat16) or null."
                )
        use_ohem = kwargs.pop("use_ohem", None)
        if use_ohem is not None:
            if not isinstance(use_ohem, bool):
                raise DDRNetConfigError(f"DDRNetConfig: invalid use_ohem={use_ohem!r}; expected true or false.")
            loss_type = "ohem" if use_ohem else "cross_entropy"
        super().__init__(**kwargs)
        self.base_channels = base_channels
        self.stem_depths = as_list("stem_depths", stem_depths, [2, 2])
        self.context_channel_multipliers = as_list("context_channel_multipliers", context_channel_multipliers, [4, 8])
        self.context_depths = as_list("context_depths", context_depths, [2, 2])
        self.detail_depths = as_list("detail_depths", detail_depths, [2, 2])
        self.spp_channels = spp_channels
        self.head_channels = head_channels
        self.use_auxiliary_head = use_auxiliary_head
        self.auxiliary_loss_weight = auxiliary_loss_weight
        self.loss_type = loss_type
        self.ohem_threshold = ohem_threshold
        self.ohem_min_kept = ohem_min_kept
        self.edge_kernel_size = edge_kernel_size
        if isinstance(class_weights, str) and class_weights not in NAMED_CLASS_WEIGHTS:
            raise DDRNetConfigError(
                f"DDRNetConfig: unknown class_weights={class_weights!r}; expected a list of floats or one of "
                f"{sorted(NAMED_CLASS_WEIGHTS)}."
            )
        if isinstance(class_weights, str):
            class_weights = NAMED_CLASS_WEIGHTS[class_weights]
        self.class_weights = None if class_weights is None else list(class_weights)
        self.semantic_loss_ignore_index = semantic_loss_ignore_index
        self.align_corners = align_corners
        self.batch_norm_momentum = batch_norm_momentum
        self.batch_norm_eps = batch_norm_eps
        self.num_channels = num_channels
        self._check()

    def _check(self) -> None:
        def fail(name: str, value: Any, expected: str) -> None:
            raise DDRNetConfigError(f"DDRNetConfig: invalid {name}={value!r}; expected {expected}.")

        def is_integer(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_number(value: Any) -> bool:
            return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

        for name in ("base_channels", "spp_channels", "head_channels", "num_channels", "ohem_min_kept", "num_labels"):
            value = getattr(self, name)
            if not is_integer(value) or not 1 <= value <= MAX_SIZES[name]:
                fail(name, value, f"an integer in 1..{MAX_SIZES[name]}")
        for name in ("batch_norm_eps", "batch_norm_momentum", "auxiliary_loss_weight", "ohem_threshold"):
            if not is_number(getattr(self, name)):
                fail(name, getattr(self, name), "a finite number")
        for name in ("use_auxiliary_head", "align_corners"):
            if not isinstance(getattr(self, name), bool):
                fail(name, getattr(self, name), "true or false")
        if not is_integer(self.semantic_loss_ignore_index):
            fail("semantic_loss_ignore_index", self.semantic_loss_ignore_index, "an integer")
        if self.batch_norm_eps <= 0:
            fail("batch_norm_eps", self.batch_norm_eps, "a positive number")
        if not 0.0 <= self.batch_norm_momentum <= 1.0:
            fail("batch_norm_momentum", self.batch_norm_momentum, "a number in [0, 1]")
        for name in ("stem_depths", "context_channel_multipliers", "context_depths", "detail_depths"):
            values = getattr(self, name)
            if not all(is_integer(v) and 1 <= v <= MAX_DEPTH for v in values):
                fail(name, values, f"a list of integers in 1..{MAX_DEPTH}")
        if len(self.stem_depths) != 2:
            fail("stem_depths", self.stem_depths, "two positive integers (blocks at 1/4 and 1/8 resolution)")
        num_stages = len(self.context_channel_multipliers)
        if not 2 <= num_stages <= MAX_DEPTH:
            fail("context_channel_multipliers", self.context_channel_multipliers, "at least two stages")
        if any(m not in (4, 8) for m in self.context_channel_multipliers) or sorted(
            self.context_channel_multipliers
        ) != list(self.context_channel_multipliers):
            fail("context_channel_multipliers", self.context_channel_multipliers, "non-decreasing values among 4, 8")
        for name in ("context_depths", "detail_depths"):
            depths = getattr(self, name)
            if len(depths) != num_stages:
                fail(name, depths, f"{num_stages} positive integers, one per bilateral stage")
        if self.loss_type not in LOSS_TYPES:
            fail("loss_type", self.loss_type, f"one of {', '.join(LOSS_TYPES)}")
        if (
            not is_integer(self.edge_kernel_size)
            or self.edge_kernel_size % 2 == 0
            or not 3 <= self.edge_kernel_size <= 63
        ):
            fail("edge_kernel_size", self.edge_kernel_size, "an odd integer in 3..63")
        if not 0.0 <= self.ohem_threshold <= 1.0:
            fail("ohem_threshold", self.ohem_threshold, "a probability in [0, 1]")
        if self.auxiliary_loss_weight < 0:
            fail("auxiliary_loss_weight", self.auxiliary_loss_weight, "a non-negative number")
        if self.class_weights is not None and len(self.class_weights) != self.num_labels:
            fail("class_weights", self.class_weights, f"{self.num_labels} values (one per label)")
        if self.class_weights is not None and not all(is_number(w) and w >= 0 for w in self.class_weights):
            fail("class_weights", self.class_weights, "finite, non-negative numbers")

    @classmethod
    def from_variant(cls, name: str, **overrides: Any) -> DDRNetConfig:
        """Build the configuration of a published variant (`"ddrnet-23-slim"`, `"ddrnet-23"`, `"ddrnet-39"`)."""
        if name not in VARIANTS:
            raise DDRNetConfigError(f"Unknown DDRNet variant {name!r}; valid variants: {', '.join(VARIANTS)}.")
        return cls(**{**VARIANTS[name], **overrides})


__all__ = ["DDRNetConfig", "DDRNetConfigError", "VARIANTS", "CITYSCAPES_CLASS_NAMES", "CITYSCAPES_CLASS_WEIGHTS"]
