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


def model_with_trained_statistics(config: DDRNetConfig) -> DDRNetForSemanticSegmentation:
    """Random BatchNorm statistics and affine parameters, so that folding has something to fold."""
    torch.manual_seed(0)
    model = DDRNetForSemanticSegmentation(config)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.2)
    return model.eval()


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


@pytest.fixture(scope="session")
def synthetic_custom(tmp_path_factory):
    """A small synthetic non-Cityscapes dataset in all three layouts (split files, save_to_disk, parquet); do not
    modify it. Returns `dataset_builders.synthetic_custom.SyntheticCustomPaths`."""
    from dataset_builders.synthetic_custom import make_synthetic_custom

    return make_synthetic_custom(tmp_path_factory.mktemp("synthetic_custom"), num_train=4, num_val=3, num_test=2)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One datasets cache for the session: the shared synthetic datasets are prepared once."""
    return tmp_path_factory.mktemp("datasets_cache")


@pytest.fixture(scope="session")
def label_space(synthetic_custom):
    """The classes of `synthetic_custom`."""
    from dataset_builders.label_space import LabelSpace

    return LabelSpace.from_labels_file(synthetic_custom.labels_file)


def tree_digest(root: Path) -> str:
    """The names and bytes of every file under `root`."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def cache_dirs(cache: Path) -> list[Path]:
    """The prepared datasets under a `datasets` cache folder (one `dataset_info.json` each)."""
    return sorted(cache.rglob("dataset_info.json"))


def load_script(name: str):
    """The command that scripts/<name>.py runs (`ddrnet_toolkit.commands.<name>`), to call its `main` or
    `parse_args` in this process."""
    import importlib

    return importlib.import_module(f"ddrnet_toolkit.commands.{name}")


def run_script(script: str, *args: str, config: str | None = None, timeout: int = 600):
    """Run scripts/<script> in a subprocess, through `accelerate launch` when `config` names an accelerate config."""
    import subprocess

    path = str(REPO_ROOT / "scripts" / script)
    if config is None:
        command = [sys.executable, path, *args]
    else:
        config_file = str(REPO_ROOT / "configs" / "accelerate" / config)
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", config_file, path, *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO_ROOT)


def check_evaluation_equals_one_process(run_dir: Path, data_dir: Path, work_dir: Path) -> None:
    """The evaluation a distributed run shared (its `last_model/eval_results.json`) equals eval.py's in one process
    on the model it saved."""
    import json

    shared = json.loads((run_dir / "last_model" / "eval_results.json").read_text())
    arguments = ["--model_name_or_path", str(run_dir / "last_model"), "--data_dir", str(data_dir), "--num_workers"]
    arguments += ["0", "--cache_dir", str(work_dir / "cache"), "--output_file", str(work_dir / "alone.json")]
    result = run_script("eval.py", *arguments)
    assert result.returncode == 0, result.stderr[-3000:]
    alone = json.loads((work_dir / "alone.json").read_text())
    assert (alone["mean_iou"], alone["per_category_iou"]) == (shared["mean_iou"], shared["per_category_iou"])


TINY_TRAINING_ARGS = (
    "--base_size",
    "128",
    "--crop_size",
    "64",
    "64",
    "--per_device_train_batch_size",
    "2",
    "--num_workers",
    "0",
    "--logging_steps",
    "1",
    "--ohem_min_kept",
    "500",
    "--num_eval_images_to_log",
    "2",
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved tiny DDRNet (random weights) with its image processor."""
    from modeling_ddrnet import DDRNetImageProcessor

    path = tmp_path_factory.mktemp("tiny_model")
    torch.manual_seed(0)
    DDRNetForSemanticSegmentation(tiny_config()).save_pretrained(path)
    DDRNetImageProcessor().save_pretrained(path)
    return path
