"""Shared fixtures. Tests never reach the Hub and run on the CPU."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

from modeling_ddrnet import DDRNetConfig, DDRNetForSemanticSegmentation  # noqa: E402


def tiny_config(**overrides) -> DDRNetConfig:
    """A DDRNet-23-shaped network small enough for fast CPU tests."""
    values = {"base_channels": 8, "spp_channels": 16, "head_channels": 16, "ohem_min_kept": 1000, **overrides}
    return DDRNetConfig(**values)


@pytest.fixture
def tiny_model() -> DDRNetForSemanticSegmentation:
    torch.manual_seed(0)
    return DDRNetForSemanticSegmentation(tiny_config())
