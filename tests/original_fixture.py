"""Facts recorded from the original DDRNet code (ydhongHIT/DDRNet @ de0db31), kept as data, not code.

`fixtures/original_ddrnet.json` holds, for each variant: the key names and shapes of the original segmentation
network (`augment=True`) and of the ImageNet classification network, and the outputs the original segmentation
network computed in eval mode on `fixture_input()` when loaded with `fixture_state_dict(...)`. The recording ran
the original code once, outside this repository; only its results are stored.
"""

from __future__ import annotations

import json
import zlib
from functools import cache
from pathlib import Path

import torch

FIXTURE_PATH = Path(__file__).parent / "fixtures" / "original_ddrnet.json"
FIXTURE_INPUT_SHAPE = (1, 3, 64, 64)


@cache
def load_fixture() -> dict:
    return json.loads(FIXTURE_PATH.read_text())


def fixture_tensor(name: str, shape: list[int]) -> torch.Tensor:
    """A deterministic, well-scaled tensor for an original key: seeded by the key name, shaped like the key."""
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    if name.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.long)
    if name.endswith("running_var"):
        return torch.rand(shape, generator=generator) * 0.5 + 0.5
    if name.endswith("running_mean"):
        return torch.randn(shape, generator=generator) * 0.1
    if len(shape) == 1:
        # 1-D weights are batch-norm scales (the classifier's `linear.weight` is 2-D); 1-D biases are shifts.
        base = 1.0 if name.endswith(".weight") else 0.0
        return base + torch.randn(shape, generator=generator) * 0.1
    fan_in = int(torch.tensor(shape[1:]).prod())
    return torch.randn(shape, generator=generator) * (1.0 / fan_in) ** 0.5


def fixture_state_dict(keys: list[list]) -> dict[str, torch.Tensor]:
    """Original-layout state_dict for `[[name, shape], ...]` from the fixture."""
    return {name: fixture_tensor(name, shape) for name, shape in keys}


def fixture_input() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(FIXTURE_INPUT_SHAPE, generator=generator)


def layouts(state_dict: dict[str, torch.Tensor]) -> dict[str, dict]:
    """The checkpoint layouts found in the wild, built around one original state_dict."""
    return {
        "bare": state_dict,
        "state_dict+module": {"state_dict": {f"module.{k}": v for k, v in state_dict.items()}, "epoch": 3},
        "fullmodel": {**{f"model.{k}": v for k, v in state_dict.items()}, "loss.criterion.weight": torch.ones(19)},
        "wrapped fullmodel": {
            "state_dict": {**{f"model.{k}": v for k, v in state_dict.items()}, "loss.criterion.weight": torch.ones(19)}
        },
    }
