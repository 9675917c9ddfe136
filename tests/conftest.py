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


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic Cityscapes shared by the data, training and script tests (do not modify it)."""
    from dataset_builders.cityscapes.synthetic import make_synthetic_cityscapes

    root = tmp_path_factory.mktemp("synthetic_cityscapes")
    make_synthetic_cityscapes(root, num_train=6, num_val=3, num_test=2, height=64, width=128, seed=0)
    return root
