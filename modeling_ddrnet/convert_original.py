"""Bring the original DDRNet checkpoints (`.pth`) into `DDRNetForSemanticSegmentation`.

Layouts handled, as found in the wild:
- a bare state_dict (the official ImageNet classification checkpoints, e.g. `DDRNet23s_imagenet.pth`);
- `{"state_dict": ...}` wrappers and DataParallel `module.` prefixes;
- HRNet-style `FullModel` checkpoints (DDRNet.pytorch's Cityscapes weights): `model.` prefixes and a
  `loss.criterion.weight` entry;
- DDRNet-39's own stage names (`layer3_1`, `layer3_2`, `compression3_1`, `down3_2`, `layer3_1_`, ...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .configuration_ddrnet import DDRNetConfig
from .modeling_ddrnet import DDRNetForSemanticSegmentation

# Keys of the ImageNet classifier (not part of the segmentation network) and of training wrappers.
DISCARDED_KEY_PATTERNS = (r"^down5\.", r"^last_layer\.", r"^linear\.", r"^loss\.", r"^criterion\.")
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
WRAPPER_PREFIXES = ("module.", "model.")


class CheckpointConversionError(ValueError):
    """The checkpoint does not fit the requested variant; nothing was written."""


# The parts of the network, by this port's key prefixes, in the order a report lists them.
NETWORK_PARTS = (
    ("stem and layers 1-2", ("ddrnet.stem.", "ddrnet.layer1.", "ddrnet.layer2.")),
    ("low-resolution (context) branch", ("ddrnet.context_bottleneck.",)),
    ("high-resolution (detail) branch", ("ddrnet.detail_bottleneck.",)),
    ("bilateral fusion", ()),
    ("DAPPM", ("ddrnet.dappm.",)),
    ("heads", ("decode_head.", "aux_head.")),
)
_STAGE_PARTS = {
    "context": "low-resolution (context) branch",
    "detail": "high-resolution (detail) branch",
    "down": "bilateral fusion",
    "compression": "bilateral fusion",
}


def network_part(key: str) -> str:
    """The part of the network (one of `NETWORK_PARTS`) that a key of this port belongs to."""
    parts = key.split(".")
    if parts[:2] == ["ddrnet", "stages"]:
        return _STAGE_PARTS[parts[3]]
    return next(name for name, prefixes in NETWORK_PARTS if key.startswith(prefixes))


@dataclass
class ConversionReport:
    loaded: list[str] = field(default_factory=list)  # this port's names of the tensors taken from the checkpoint
    discarded: list[str] = field(default_factory=list)
    initialized: list[str] = field(default_factory=list)

    def loaded_per_part(self) -> dict[str, int]:
        """How many loaded tensors each part of the network received (parts that received none left out)."""
        counts = {name: 0 for name, _ in NETWORK_PARTS}
        for key in self.loaded:
            counts[network_part(key)] += 1
        return {name: count for name, count in counts.items() if count}

    def summary(self) -> str:
        per_part = ", ".join(f"{name} {count}" for name, count in self.loaded_per_part().items())
        lines = [f"loaded {len(self.loaded)} tensors: {per_part}"]
        if self.discarded:
            lines.append(
                f"dropped {len(self.discarded)} keys not used for segmentation: {compress_names(self.discarded)}"
            )
        if self.initialized:
            lines.append(
                f"left {len(self.initialized)} tensors freshly initialized: {compress_names(self.initialized)}"
            )
        return "\n".join(lines)


def compress_names(names: list[str]) -> str:
    """Group keys by their first two components so that a summary stays one line per module family."""
    groups = sorted({".".join(name.split(".")[:2]) for name in names})
    return ", ".join(groups)


def original_stage_names(num_stages: int) -> list[tuple[str, str, str, str]]:
    """Original (context, detail, down, compression) module names of each bilateral stage.

    DDRNet-23 names its stages 3 and 4; DDRNet-39 splits stage 3 into 3_1 and 3_2.
    """
    names = []
    for index in range(num_stages):
        if index == num_stages - 1:
            suffix = "4"
        elif num_stages == 2:
            suffix = "3"
        else:
            suffix = f"3_{index + 1}"
        names.append((f"layer{suffix}", f"layer{suffix}_", f"down{suffix}", f"compression{suffix}"))
    return names


def original_to_hf_prefixes(config: DDRNetConfig) -> dict[str, str]:
    """Map the first component(s) of an original key to this port's module path."""
    mapping = {
        "conv1.0": "ddrnet.stem.conv1",
        "conv1.1": "ddrnet.stem.bn1",
        "conv1.3": "ddrnet.stem.conv2",
        "conv1.4": "ddrnet.stem.bn2",
        "layer1": "ddrnet.layer1",
        "layer2": "ddrnet.layer2",
        "layer5_.0": "ddrnet.detail_bottleneck",
        "layer5.0": "ddrnet.context_bottleneck",
        "spp": "ddrnet.dappm",
        "final_layer": "decode_head",
        "seghead_extra": "aux_head",
    }
    for index, names in enumerate(original_stage_names(len(config.context_channel_multipliers))):
        for original, ours in zip(names, ("context", "detail", "down", "compression"), strict=True):
            mapping[original] = f"ddrnet.stages.{index}.{ours}"
    return mapping


def unwrap_state_dict(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """Strip `{"state_dict": ...}` wrappers and `module.`/`model.` prefixes."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointConversionError(
            f"The checkpoint holds a {type(checkpoint).__name__}, not a state_dict (a mapping of names to tensors)."
        )
    state_dict = checkpoint
    while isinstance(state_dict, Mapping):
        wrapper = next((k for k in WRAPPER_KEYS if isinstance(state_dict.get(k), Mapping)), None)
        if wrapper is None:
            break
        state_dict = state_dict[wrapper]
    tensors = {k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointConversionError("The checkpoint holds no tensors (expected a state_dict).")
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            # A prefix is a wrapper's only when every model key carries it (`loss.*` is a sibling of `model.*`).
            model_keys = [k for k in tensors if not is_discarded(k)]
            if model_keys and all(k.startswith(prefix) for k in model_keys):
                tensors = {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in tensors.items()}
                changed = True
    return tensors


def is_discarded(key: str) -> bool:
    return any(re.match(pattern, key) for pattern in DISCARDED_KEY_PATTERNS)


def rename_key(key: str, prefixes: Mapping[str, str]) -> str | None:
    """The port's name for an original key, or None if no module of the port corresponds."""
    parts = key.split(".")
    for length in (2, 1):
        head = ".".join(parts[:length])
        if head in prefixes:
            return ".".join([prefixes[head], *parts[length:]])
    return None


def convert_state_dict(
    checkpoint: Mapping, config: DDRNetConfig
) -> tuple[DDRNetForSemanticSegmentation, ConversionReport]:
    """Build a model for `config` and load the original checkpoint into it.

    Raises:
        CheckpointConversionError: a key that belongs to no module of the variant, or a shape mismatch.
    """
    state_dict = unwrap_state_dict(checkpoint)
    model = DDRNetForSemanticSegmentation(config)
    expected = model.state_dict()
    prefixes = original_to_hf_prefixes(config)
    report = ConversionReport()
    converted: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    mismatched: list[str] = []
    for key, tensor in state_dict.items():
        if is_discarded(key):
            report.discarded.append(key)
            continue
        new_key = rename_key(key, prefixes)
        if new_key is None or new_key not in expected:
            if key.startswith("seghead_extra.") and not config.use_auxiliary_head:
                report.discarded.append(key)
                continue
            unexpected.append(key)
            continue
        if tuple(tensor.shape) != tuple(expected[new_key].shape):
            mismatched.append(f"{key}: checkpoint {tuple(tensor.shape)} vs model {tuple(expected[new_key].shape)}")
            continue
        converted[new_key] = tensor
        report.loaded.append(new_key)
    if unexpected or mismatched:
        details = []
        if unexpected:
            details.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(unexpected[:5])}")
        if mismatched:
            details.append(f"{len(mismatched)} shape mismatch(es): {'; '.join(mismatched[:5])}")
        raise CheckpointConversionError(
            "The checkpoint does not match this variant (is --variant right?): " + " | ".join(details)
        )
    # Loss buffers (class weights) are not persistent and never come from a checkpoint.
    report.initialized = sorted(k for k in expected if k not in converted)
    model.load_state_dict({**expected, **converted})
    return model, report


def load_original_checkpoint(path: str | Path) -> Mapping:
    """Read a `.pth` file safely: tensors and plain containers only (`weights_only=True`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointConversionError(f"Cannot read {path} as a PyTorch checkpoint: {error}") from error
    if not isinstance(checkpoint, Mapping):
        raise CheckpointConversionError(
            f"{path} holds a {type(checkpoint).__name__}, not a state_dict (a mapping of names to tensors)"
        )
    return checkpoint
