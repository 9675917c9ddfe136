"""Shared fixtures. Tests never reach the Hub and run on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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


def run_script(
    script: str, *args: str, config: str | None = None, launch_args: tuple[str, ...] = (), timeout: int = 600
):
    """Run scripts/<script> in a subprocess, through `accelerate launch` (with `launch_args`, e.g. its own
    `--mixed_precision`) when `config` names an accelerate config."""
    path = str(REPO_ROOT / "scripts" / script)
    if config is None:
        command = [sys.executable, path, *args]
    else:
        config_file = str(REPO_ROOT / "configs" / "accelerate" / config)
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", config_file, *launch_args]
        command = [*launch, path, *args]
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


# How far an fp32 export's logits may lie from PyTorch's, relative to the largest logit: the export's own check
# (`--tolerance`'s default).
FP32_TOLERANCE = 1e-4
# A random tiny model's logits lie close together: int8 changes several percent of its labels, where the demo
# DDRNet-23-slim changes well under 1%. The int8 exports below are held to this bound.
TINY_INT8_BOUND = 0.2


def int8_export_arguments(model: Path, output: Path, data: Path, cache: Path) -> list[str]:
    """The options of an int8 export (`ddrnet-export-onnx` or `ddrnet-export-openvino`) of a tiny model, calibrated
    on 4 images of the dataset at `data` and checked at 64x128."""
    return [
        "--model_name_or_path",
        str(model),
        "--output",
        str(output),
        "--check_size",
        "64",
        "128",
        "--int8",
        "--calibration_data_dir",
        str(data),
        "--num_calibration_images",
        "4",
        "--cache_dir",
        str(cache),
        "--max_label_disagreement",
        str(TINY_INT8_BOUND),
    ]


@pytest.fixture(scope="session")
def exported_tiny_models(tiny_model_dir, synthetic_root, cache_dir, tmp_path_factory) -> dict[str, Path]:
    """`tiny_model_dir` exported by the checked export to both targets, fp32 and int8 (calibrated on 4 training
    images of `synthetic_root`): keys onnx, onnx-int8, openvino, openvino-int8."""
    from ddrnet_toolkit.data.selection import load_dataset
    from ddrnet_toolkit.export.checked_export import Int8Calibration, export_checked
    from ddrnet_toolkit.model_folder import load_trained_model

    folder = tmp_path_factory.mktemp("exported")
    model = load_trained_model(tiny_model_dir)
    train = load_dataset(data_dir=str(synthetic_root), cache_dir=str(cache_dir)).split("train")
    calibration = Int8Calibration(train, [0, 2, 3, 5], "train", TINY_INT8_BOUND)
    paths = {}
    for target, name in (("onnx", "model.onnx"), ("openvino", "model.xml")):
        check = {"opset": 17, "check_size": (64, 128), "tolerance": FP32_TOLERANCE}
        report = export_checked(model, folder / name, target=target, **check, int8=calibration)
        paths[target], paths[f"{target}-int8"] = report.path, report.int8_path
    return paths


TRAIN_SCRIPT = REPO_ROOT / "scripts" / "train.py"


def train_command(synthetic_root, model_dir, output_dir, *extra) -> list[str]:
    """scripts/train.py on `synthetic_root` at the tiny sizes, without trackers or evaluation."""
    args = ["--model_name_or_path", str(model_dir), "--data_dir", str(synthetic_root), "--output_dir", str(output_dir)]
    args += ["--cache_dir", str(output_dir.parent / "cache"), "--report_to", "none", "--eval_split", "none"]
    return [sys.executable, str(TRAIN_SCRIPT), *args, *TINY_TRAINING_ARGS, *extra]


class Run:
    """A training process in its own session, its output in a file that can be read while it runs."""

    def __init__(self, command: list[str], log_path):
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
            )

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, condition, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"the run ended early: {self.output()[-3000:]}"
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.005)

    def signal(self, number: int) -> None:
        os.killpg(self.process.pid, number)

    def finish(self) -> tuple[int, str]:
        self.process.wait(timeout=300)
        return self.process.returncode, self.output()
