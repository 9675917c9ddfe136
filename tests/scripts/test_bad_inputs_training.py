"""Bad input and faults at train.py and eval.py, table-driven: each case gets its exit status (2 for arguments, 1 for
input the user can fix), one `error:` line that names the culprit, no traceback, and leaves the user's files as
they were."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, TINY_TRAINING_ARGS, load_script, tiny_config
from PIL import Image
from safetensors.torch import load_file, save_file

from ddrnet_toolkit.commands.runner import run_script
from modeling_ddrnet import DDRNetForSemanticSegmentation, DDRNetImageProcessor

TRAIN, EVAL = load_script("train"), load_script("eval")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, synthetic_root, tiny_model_dir) -> dict[str, Path]:
    """A finished two-step run (checkpoints at steps 1 and 2) and a copy of the synthetic data to damage."""
    root = tmp_path_factory.mktemp("bad_inputs")
    run = root / "finished"
    argv = ["--model_name_or_path", str(tiny_model_dir), "--data_dir", str(synthetic_root), "--output_dir", str(run)]
    argv += ["--cache_dir", str(root / "cache"), "--report_to", "none", *TINY_TRAINING_ARGS]
    argv += ["--max_train_steps", "2", "--eval_steps", "2", "--checkpointing_steps", "1"]
    assert TRAIN.main(argv) == 0
    return {"root": root, "run": run, "data": synthetic_root, "model": tiny_model_dir}


def copy_data(workspace, tmp_path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(workspace["data"], data)
    return data


def first_line_file(data: Path, split_file: str, column: int) -> Path:
    return data / (data / "lists" / split_file).read_text().split("\n")[0].split()[column]


def damage_image(kind: str) -> Callable:
    def setup(workspace, tmp_path) -> None:
        data = copy_data(workspace, tmp_path)
        image = first_line_file(data, "train.lst", 0)
        if kind == "16-bit":
            Image.fromarray(np.full((64, 128), 40000, dtype=np.uint16)).save(image)
        elif kind == "truncated":
            image.write_bytes(image.read_bytes()[:500])
        elif kind == "not an image":
            image.write_text("hello")

    return setup


def damage_label(kind: str) -> Callable:
    def setup(workspace, tmp_path) -> None:
        data = copy_data(workspace, tmp_path)
        label = first_line_file(data, "train.lst", 1)
        if kind == "1-bit":
            Image.fromarray(np.zeros((64, 128), dtype=bool)).save(label)
        elif kind == "out of range":
            Image.fromarray(np.full((64, 128), 200, dtype=np.uint8)).save(label)
        elif kind == "wrong size":
            Image.fromarray(np.zeros((32, 32), dtype=np.uint8)).save(label)

    return setup


def save_model(kind: str) -> Callable:
    def setup(workspace, tmp_path) -> None:
        folder = tmp_path / "model"
        shutil.copytree(workspace["model"], folder)
        config = json.loads((folder / "config.json").read_text())
        weights = folder / "model.safetensors"
        if kind == "foreign":
            (folder / "config.json").write_text(json.dumps({**config, "model_type": "segformer"}))
        elif kind == "invalid json":
            (folder / "config.json").write_text('{"model_type": "ddrnet",')
        elif kind == "no decode head":
            tensors = {k: v for k, v in load_file(weights).items() if not k.startswith("decode_head.")}
            save_file(tensors, weights, metadata={"format": "pt"})
        elif kind == "nan":
            tensors = load_file(weights)
            tensors["decode_head.conv2.bias"] = torch.full_like(tensors["decode_head.conv2.bias"], float("nan"))
            save_file(tensors, weights, metadata={"format": "pt"})
        elif kind == "truncated":
            weights.write_bytes(weights.read_bytes()[:1000])
        elif kind == "five labels":
            DDRNetForSemanticSegmentation(tiny_config(num_labels=5)).save_pretrained(folder)

    return setup


def damage_checkpoint(kind: str) -> Callable:
    def setup(workspace, tmp_path) -> None:
        run = tmp_path / "run"
        shutil.copytree(workspace["run"], run, symlinks=True)
        latest = run / "checkpoints" / "step_00000002"
        state_file = latest / "trainer_state.json"
        state = json.loads(state_file.read_text())
        if kind == "truncated weights":
            (latest / "model.safetensors").write_bytes((latest / "model.safetensors").read_bytes()[:1000])
        elif kind == "invalid state":
            state_file.write_text("{not json")
        elif kind == "step past the new run":
            state_file.write_text(json.dumps({**state, "global_step": 10, "max_train_steps": 10}))
        elif kind == "step past its own run":
            state_file.write_text(json.dumps({**state, "global_step": 3, "max_train_steps": 2}))

    return setup


def write_file(name: str, content: str | bytes) -> Callable:
    def setup(workspace, tmp_path) -> None:
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)

    return setup


def damage_config(**changes) -> Callable:
    """A copy of the tiny model whose config.json holds `changes`."""

    def setup(workspace, tmp_path) -> None:
        folder = tmp_path / "model"
        shutil.copytree(workspace["model"], folder)
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, **changes}))

    return setup


def damage_weights(kind: str) -> Callable:
    """A copy of the tiny model whose weights are finite but compute NaN, or are stored as integers."""

    def setup(workspace, tmp_path) -> None:
        folder = tmp_path / "model"
        shutil.copytree(workspace["model"], folder)
        weights = folder / "model.safetensors"
        tensors = load_file(weights)
        if kind == "negative variance":
            tensors["ddrnet.dappm.scale0.0.running_var"] = -tensors["ddrnet.dappm.scale0.0.running_var"]
        elif kind == "scaled 1e30":
            tensors = {k: v * 1e30 if v.is_floating_point() and "running" not in k else v for k, v in tensors.items()}
        elif kind == "int64":
            tensors["decode_head.conv2.weight"] = tensors["decode_head.conv2.weight"].long()
        save_file(tensors, weights, metadata={"format": "pt"})

    return setup


def saved_dataset(kind: str) -> Callable:
    """A two-split `save_to_disk` dataset of 64x128 images (and its labels file), damaged as `kind` says."""

    def setup(workspace, tmp_path) -> None:
        import datasets

        image = Image.fromarray(np.full((64, 128, 3), 100, np.uint8))
        label = Image.fromarray(np.zeros((64, 128), np.uint8))
        rows = {"image": [image] * 4, "label": [label] * 4}
        if kind == "null image":
            rows["image"][1] = None
        elif kind == "null label":
            rows["label"][2] = None
        elif kind == "bad value":
            rows["label"] = [Image.fromarray(np.full((64, 128), 200, np.uint8))] * 4
        features = datasets.Features({"image": datasets.Image(), "label": datasets.Image()})
        split = datasets.Dataset.from_dict(rows, features=features)
        folder = tmp_path / "ds"
        datasets.DatasetDict({"train": split, "validation": split}).save_to_disk(str(folder))
        if kind == "broken dict":
            (folder / "dataset_dict.json").write_text('{"splits": ["train", ')
        elif kind == "truncated arrow":
            arrow = next((folder / "train").glob("*.arrow"))
            arrow.write_bytes(arrow.read_bytes()[:300])
        (tmp_path / "ds_labels.json").write_text(json.dumps({"0": "background", "1": "thing"}))

    return setup


def copy_run(workspace, tmp_path) -> None:
    shutil.copytree(workspace["run"], tmp_path / "run", symlinks=True)


def make_file(workspace, tmp_path) -> None:
    (tmp_path / "a_file").write_text("user data")


def make_folder(workspace, tmp_path) -> None:
    (tmp_path / "results.json").mkdir()
    (tmp_path / "results.json" / "keep.txt").write_text("user data")


@dataclass
class Case:
    id: str
    script: str  # "train" or "eval"
    argv: list[str]  # {data}, {model}, {run}, {tmp} are filled in
    code: int
    message: str  # a regex the error must match
    setup: Callable | None = None


TRAIN_BASE = ["--data_dir", "{data}", "--output_dir", "{tmp}/out", "--report_to", "none", *TINY_TRAINING_ARGS]
TRAIN_BASE += ["--cache_dir", "{tmp}/cache", "--max_train_steps", "1", "--eval_split", "none"]
FROM_MODEL = ["--model_name_or_path", "{model}"]
RESUME = ["--data_dir", "{data}", "--output_dir", "{tmp}/run", "--report_to", "none", *TINY_TRAINING_ARGS]
RESUME += ["--cache_dir", "{tmp}/cache", "--max_train_steps", "4", "--eval_steps", "2", "--checkpointing_steps", "1"]
RESUME += ["--model_name_or_path", "{model}", "--resume_from_checkpoint", "latest"]
EVAL_BASE = ["--data_dir", "{data}", "--cache_dir", "{tmp}/cache", "--num_workers", "0"]
RECIPE = ["--config", "{tmp}/recipe.yaml", *TRAIN_BASE]
DATASET = ["--dataset_name", "{tmp}/ds", "--labels_file", "{tmp}/ds_labels.json", "--output_dir", "{tmp}/out"]
DATASET += ["--report_to", "none", *TINY_TRAINING_ARGS, "--max_train_steps", "1", "--eval_split", "none"]
DATASET += ["--cache_dir", "{tmp}/cache"]
BILLION_LAUGHS = (
    "a: &a [1, 1, 1, 1, 1, 1, 1, 1]\n"
    + "".join(
        f"{name}: &{name} [{', '.join(['*' + previous] * 8)}]\n"
        for previous, name in zip("abcdefgh", "bcdefghi", strict=True)  # noqa: E501
    )
    + "learning_rate: *i\n"
)

CASES = [
    # Arguments: parser errors, exit status 2, before anything is written.
    Case("lr-nan", "train", [*TRAIN_BASE, "--learning_rate", "nan"], 2, "--learning_rate must be a positive"),
    Case("lr-negative", "train", [*TRAIN_BASE, "--learning_rate", "-1"], 2, "--learning_rate must be a positive"),
    Case("poly-power-negative", "train", [*TRAIN_BASE, "--poly_power", "-1"], 2, "--poly_power must be"),
    Case("momentum-above-1", "train", [*TRAIN_BASE, "--momentum", "1.5"], 2, "--momentum must be"),
    Case("weight-decay-inf", "train", [*TRAIN_BASE, "--weight_decay", "inf"], 2, "--weight_decay must be"),
    Case("checkpoint-limit-negative", "train", [*TRAIN_BASE, "--checkpoints_total_limit", "-1"], 2, "--checkpoints_"),
    Case("batch-0", "train", [*TRAIN_BASE, "--per_device_train_batch_size", "0"], 2, "--per_device_train_batch"),
    Case("crop-too-large", "train", [*TRAIN_BASE, "--crop_size", "5000", "5000"], 2, "--crop_size 5000 5000"),
    Case("scale-range-reversed", "train", [*TRAIN_BASE, "--scale_range", "2", "1"], 2, "--scale_range"),
    Case("scale-range-nan", "train", [*TRAIN_BASE, "--scale_range", "0.5", "nan"], 2, "--scale_range"),
    Case("max-nonfinite-0", "train", [*TRAIN_BASE, "--max_nonfinite_steps", "0"], 2, "--max_nonfinite_steps"),
    Case("eval-steps-0", "train", [*TRAIN_BASE, "--eval_steps", "0"], 2, "--eval_steps must be at least 1"),
    Case("workers-negative", "train", [*TRAIN_BASE, "--num_workers", "-2"], 2, "--num_workers must be >= 0"),
    Case("unknown-variant", "train", [*TRAIN_BASE, "--variant", "ddrnet-50"], 2, "invalid choice: 'ddrnet-50'"),
    Case("preparation-workers-0", "train", [*TRAIN_BASE, "--preprocessing_num_workers", "0"], 2, "must be >= 1, got 0"),
    Case("ddp-timeout-0", "train", [*TRAIN_BASE, "--ddp_timeout", "0"], 2, "must be a positive number of seconds"),
    Case("image-storage", "train", [*TRAIN_BASE, "--train_image_storage", "jpeg"], 2, "invalid choice: 'jpeg'"),
    Case(
        "compile-backend-unknown",
        "train",
        [*TRAIN_BASE, "--compile", "--compile_backend", "inductr"],
        2,
        "--compile_backend must be one of aot_eager",
    ),
    Case(
        "compile-backend-without-compile",
        "train",
        [*TRAIN_BASE, "--compile_backend", "eager"],
        2,
        "--compile_backend eager applies with --compile only",
    ),
    Case(
        "resume-and-overwrite",
        "train",
        [*TRAIN_BASE, "--resume_from_checkpoint", "latest", "--overwrite_output_dir"],
        2,
        "not allowed with argument",
    ),
    Case(
        "eval-batch-0",
        "eval",
        [*EVAL_BASE, "--model_name_or_path", "{model}", "--per_device_eval_batch_size", "0"],
        2,
        "--per_device_eval_batch_size must be at least 1",
    ),  # fmt: skip
    # Training input the user can fix: exit status 1.
    Case("batch-1", "train", [*TRAIN_BASE, "--per_device_train_batch_size", "1"], 1, "at least 2 samples"),
    Case(
        "output-is-a-file",
        "train",
        [*TRAIN_BASE[:3], "{tmp}/a_file/out", *TRAIN_BASE[4:]],
        1,
        "--output_dir .*a_file/out cannot be written",
        make_file,
    ),  # fmt: skip
    Case("data-dir-missing", "train", [*TRAIN_BASE[:1], "{tmp}/nowhere", *TRAIN_BASE[2:]], 1, "nowhere"),
    Case(
        "train-split-unlabelled",
        "train",
        [*TRAIN_BASE, "--train_split", "test"],
        1,
        "--train_split test is not a labelled split",
    ),  # fmt: skip
    Case("eval-split-unlabelled", "train", [*TRAIN_BASE[:-1], "test"], 1, "--eval_split test is not a labelled split"),
    Case(
        "train-split-missing",
        "train",
        [*TRAIN_BASE, "--train_split", "extra"],
        1,
        "--train_split extra is not a split of",
    ),  # fmt: skip
    Case("model-missing", "train", [*TRAIN_BASE, "--model_name_or_path", "{tmp}/none"], 1, "model folder not found"),
    Case("model-foreign", "train", [*TRAIN_BASE, *FROM_MODEL], 1, "model_type is 'segformer'", save_model("foreign")),
    Case(
        "model-invalid-json",
        "train",
        [*TRAIN_BASE, *FROM_MODEL],
        1,
        r"config.json: invalid JSON at line 1",
        save_model("invalid json"),
    ),  # fmt: skip
    Case(
        "model-five-labels",
        "train",
        [*TRAIN_BASE, *FROM_MODEL],
        1,
        "predicts 5 classes but cityscapes has 19",
        save_model("five labels"),
    ),  # fmt: skip
    Case("image-16-bit", "train", TRAIN_BASE, 1, r"train.lst:1: image .* has PIL mode 'I;16'", damage_image("16-bit")),
    Case("image-truncated", "train", TRAIN_BASE, 1, r"train.lst:1: cannot decode image", damage_image("truncated")),
    Case(
        "image-not-an-image", "train", TRAIN_BASE, 1, r"train.lst:1: cannot decode image", damage_image("not an image")
    ),  # fmt: skip
    Case("label-1-bit", "train", TRAIN_BASE, 1, r"train.lst:1: label .* has PIL mode '1'", damage_label("1-bit")),
    Case(
        "label-out-of-range",
        "train",
        TRAIN_BASE,
        1,
        r"train.lst:1: label ids out of range .*\[200\]",
        damage_label("out of range"),
    ),  # fmt: skip
    Case(
        "label-wrong-size",
        "train",
        TRAIN_BASE,
        1,
        r"train.lst:1: image .* is 128x64 but label .* is 32x32",
        damage_label("wrong size"),
    ),  # fmt: skip
    # Resuming.
    Case(
        "resume-not-a-checkpoint",
        "train",
        [*TRAIN_BASE, "--resume_from_checkpoint", "{tmp}"],
        1,
        "not a complete checkpoint",
    ),  # fmt: skip
    Case(
        "resume-other-batch-size",
        "train",
        [*RESUME, "--per_device_train_batch_size", "3"],
        1,
        "trained with --per_device_train_batch_size 2, this run has 3",
        copy_run,
    ),  # fmt: skip
    Case(
        "resume-other-variant",
        "train",
        [*RESUME[:-4], "--variant", "ddrnet-23-slim", *RESUME[-2:]],
        1,
        "holds another network: base_channels 8 .this run: 32.",
        copy_run,
    ),  # fmt: skip
    Case(
        "resume-truncated-weights",
        "train",
        RESUME,
        1,
        r"step_00000002 cannot be loaded: .*resume from the previous complete one with .*step_00000001",
        damage_checkpoint("truncated weights"),
    ),  # fmt: skip
    Case(
        "resume-invalid-state",
        "train",
        RESUME,
        1,
        r"trainer_state.json: invalid JSON",
        damage_checkpoint("invalid state"),
    ),  # fmt: skip
    # Evaluation.
    Case("eval-model-missing", "eval", [*EVAL_BASE, "--model_name_or_path", "{tmp}/none"], 1, "model folder not found"),
    Case(
        "eval-model-foreign", "eval", [*EVAL_BASE, *FROM_MODEL], 1, "model_type is 'segformer'", save_model("foreign")
    ),
    Case(
        "eval-no-decode-head",
        "eval",
        [*EVAL_BASE, *FROM_MODEL],
        1,
        r"lacks \d+ weight\(s\) .*decode_head",
        save_model("no decode head"),
    ),  # fmt: skip
    Case(
        "eval-nan-weights",
        "eval",
        [*EVAL_BASE, *FROM_MODEL],
        1,
        "hold NaN or infinity .*decode_head.conv2.bias",
        save_model("nan"),
    ),  # fmt: skip
    Case(
        "eval-truncated-weights",
        "eval",
        [*EVAL_BASE, *FROM_MODEL],
        1,
        "model.safetensors cannot be loaded",
        save_model("truncated"),
    ),  # fmt: skip
    Case(
        "eval-five-labels",
        "eval",
        [*EVAL_BASE, *FROM_MODEL],
        1,
        "predicts 5 classes, cityscapes has 19",
        save_model("five labels"),
    ),  # fmt: skip
    Case(
        "eval-unlabelled-split",
        "eval",
        [*EVAL_BASE, "--model_name_or_path", "{model}", "--split", "test"],
        1,
        "--split test is not a labelled split",
    ),  # fmt: skip
    Case(
        "eval-output-is-a-folder",
        "eval",
        [*EVAL_BASE, "--model_name_or_path", "{model}", "--output_file", "{tmp}/results.json"],
        1,
        "--output_file .*results.json is a folder",
        make_folder,
    ),  # fmt: skip
    # Round 2: recipes are untrusted input.
    Case("recipe-python-tag", "train", RECIPE, 2, r"recipe.yaml line 1: learning_rate: tags such as", write_file(
        "recipe.yaml", "learning_rate: !!python/object/apply:os.system ['echo hi']\n"
    )),
    Case("recipe-list-key", "train", RECIPE, 2, r"line 1: a recipe's keys are option names, got a list", write_file(
        "recipe.yaml", "[seed, momentum]: 1\n"
    )),
    Case("recipe-not-utf8", "train", RECIPE, 2, r"recipe.yaml: not UTF-8 text", write_file(
        "recipe.yaml", b"seed: \xff\xfe\n"
    )),
    Case("recipe-output-dir-null", "train", ["--config", "{tmp}/recipe.yaml", "--data_dir", "{data}"], 2,
         r"line 1: output_dir is required: give a value, not null", write_file("recipe.yaml", "output_dir: null\n")),
    Case("recipe-alias-expansion", "train", RECIPE, 2, r"line 2: anchors and aliases .* are not allowed", write_file(
        "recipe.yaml", "seed: 1\n" + BILLION_LAUGHS
    )),
    Case("recipe-too-large", "train", RECIPE, 2, r"bytes, more than a recipe needs", write_file(
        "recipe.yaml", "# " + "x" * 200_000 + "\n"
    )),
    Case("recipe-seed-too-large", "train", RECIPE, 2, r"seed: invalid value 4294967296 .*0\.\.4294967295",
         write_file("recipe.yaml", "seed: 4294967296\n")),
    Case("seed-negative", "train", [*TRAIN_BASE, "--seed", "-5"], 2, r"--seed: must be an integer in 0\.\."),
    # Round 2: labels files are untrusted input.
    Case("labels-duplicate-id", "train", [*TRAIN_BASE, "--labels_file", "{tmp}/labels.json"], 1,
         r"labels.json: key '0' is given twice", write_file("labels.json", '{"0": "road", "0": "car"}')),
    Case("labels-deeply-nested", "train", [*TRAIN_BASE, "--labels_file", "{tmp}/labels.json"], 1,
         r"labels.json: nested too deeply", write_file("labels.json", "[" * 50_000 + "]" * 50_000)),
    Case("labels-name-on-two-lines", "train", [*TRAIN_BASE, "--labels_file", "{tmp}/labels.json"], 1,
         r"a class name is one line", write_file("labels.json", '{"0": "road\\n---", "1": "car"}')),
    # Round 2: a resumed run's step must fit the run.
    Case("resume-step-past-the-run", "train", RESUME, 1, r"step_00000002 is at step 10, past this run's 4 steps",
         damage_checkpoint("step past the new run")),
    Case("resume-step-past-its-own-run", "train", RESUME, 1, r"trainer_state.json: global_step 3 is past",
         damage_checkpoint("step past its own run")),
    # Round 2: model folders whose config or outputs cannot be right.
    Case("eval-config-align-corners-string", "eval", [*EVAL_BASE, *FROM_MODEL], 1, r"invalid align_corners='yes'",
         damage_config(align_corners="yes")),
    Case("eval-config-float-depth", "eval", [*EVAL_BASE, *FROM_MODEL], 1, r"invalid stem_depths=\[2.0, 2\]",
         damage_config(stem_depths=[2.0, 2])),
    Case("eval-config-huge-depth", "eval", [*EVAL_BASE, *FROM_MODEL], 1, r"invalid context_depths=\[1000000, 2\]",
         damage_config(context_depths=[1_000_000, 2])),
    Case("eval-config-unknown-dtype", "eval", [*EVAL_BASE, *FROM_MODEL], 1, r"invalid dtype='float7'",
         damage_config(dtype="float7")),
    Case("eval-config-ignore-index-string", "eval", [*EVAL_BASE, *FROM_MODEL], 1,
         r"invalid semantic_loss_ignore_index='x'", damage_config(semantic_loss_ignore_index="x")),
    Case("eval-negative-variance", "eval", [*EVAL_BASE, *FROM_MODEL], 1, r"negative BatchNorm variances",
         damage_weights("negative variance")),
    Case("eval-outputs-not-finite", "eval", [*EVAL_BASE, *FROM_MODEL], 1, r"computes NaN or infinite scores",
         damage_weights("scaled 1e30")),
    Case("eval-integer-weights", "eval", [*EVAL_BASE, *FROM_MODEL], 1,
         r"not stored as floating-point numbers \(e.g. decode_head.conv2.weight \(I64\)\)", damage_weights("int64")),
    Case("eval-run-folder-as-model", "eval", [*EVAL_BASE, "--model_name_or_path", "{run}"], 1,
         r"is a training run's folder, not a model folder: give .*best_model or .*last_model"),
    Case("eval-output-onto-the-model", "eval", [*EVAL_BASE, *FROM_MODEL, "--output_file", "{model}/config.json"], 1,
         r"--output_file .*config.json would replace config.json of the model", damage_config()),
    # Round 2: sliding-window options that cannot be right.
    Case("eval-stride-larger-than-window", "eval",
         [*EVAL_BASE, *FROM_MODEL, "--sliding_window", "--window", "32", "32", "--stride", "48", "48"], 2,
         r"--stride 48 48 is larger than --window 32 32"),
    Case("eval-window-without-sliding-window", "eval", [*EVAL_BASE, *FROM_MODEL, "--window", "32", "32"], 2,
         r"--window and --stride apply to --sliding_window"),
    # Round 2: datasets datasets, checked before the first step; a worker's error is the project's one line.
    Case("dataset-null-image", "train", DATASET, 1, r"ds split 'train': 1 of its 4 rows have no image",
         saved_dataset("null image")),
    Case("dataset-null-label", "train", DATASET, 1, r"ds split 'train': 1 of its 4 rows have no label",
         saved_dataset("null label")),
    Case("dataset-broken-dict", "train", DATASET, 1, r"ds cannot be read as a save_to_disk dataset",
         saved_dataset("broken dict")),
    Case("dataset-truncated-arrow", "train", DATASET, 1, r"ds cannot be read as a save_to_disk dataset",
         saved_dataset("truncated arrow")),
]  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` (links followed) and its bytes, except the datasets cache."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "cache" not in path.relative_to(folder).parts
    }


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gets_one_clear_line_and_loses_nothing(case, workspace, tmp_path, capsys):
    if case.setup is not None:
        case.setup(workspace, tmp_path)
    data = tmp_path / "data" if (tmp_path / "data").is_dir() else workspace["data"]
    model = tmp_path / "model" if (tmp_path / "model").is_dir() else workspace["model"]
    values = {"data": data, "model": model, "run": workspace["run"], "tmp": tmp_path}
    argv = [argument.format(**values) for argument in case.argv]
    before = snapshot(tmp_path)
    script = TRAIN if case.script == "train" else EVAL
    with pytest.raises(SystemExit) as exit_info:
        run_script(lambda: script.main(argv))
    stderr = capsys.readouterr().err
    assert exit_info.value.code == case.code, stderr[-2000:]
    assert "Traceback" not in stderr
    last_line = stderr.strip().splitlines()[-1]
    prefix = "error: " if case.code == 1 else ""
    assert last_line.startswith(prefix) and re.search(case.message, last_line), last_line
    assert snapshot(tmp_path) == before


def test_a_second_run_into_a_finished_run_is_refused_unless_overwrite(workspace, tmp_path, capsys):
    run = tmp_path / "run"
    copy_run(workspace, tmp_path)
    (run / "notes.txt").write_text("mine")
    before = snapshot(run)
    argv = [*RESUME[:-2]]
    values = {"data": workspace["data"], "model": workspace["model"], "tmp": tmp_path}
    argv = [argument.format(**values) for argument in argv]
    with pytest.raises(SystemExit) as exit_info:
        run_script(lambda: TRAIN.main(argv))
    assert exit_info.value.code == 1
    assert "already holds a training run" in capsys.readouterr().err
    assert snapshot(run) == before

    assert TRAIN.main([*argv, "--overwrite_output_dir", "--max_train_steps", "1", "--eval_steps", "1"]) == 0
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_00000001"]  # the new run's own checkpoint
    assert json.loads((run / "best_model" / "eval_results.json").read_text())["step"] == 1
    assert (run / "notes.txt").read_text() == "mine"  # not an output of a run: kept


def test_resuming_a_finished_run_is_a_no_op(workspace, tmp_path, caplog):
    copy_run(workspace, tmp_path)
    before = snapshot(tmp_path / "run")
    values = {"data": workspace["data"], "model": workspace["model"], "tmp": tmp_path}
    argv = [argument.format(**values) for argument in RESUME]
    argv[argv.index("--max_train_steps") + 1] = "2"
    with caplog.at_level(logging.INFO):
        assert TRAIN.main(argv) == 0
    assert "ended at step 2: nothing to do" in caplog.text
    assert snapshot(tmp_path / "run") == before


def test_a_diverging_run_stops_without_saving_a_model(workspace, tmp_path, capsys):
    argv = [argument.format(data=workspace["data"], tmp=tmp_path) for argument in TRAIN_BASE[:-2]]
    argv += ["--learning_rate", "1e30", "--max_train_steps", "3", "--eval_steps", "3", "--max_nonfinite_steps", "1"]
    with pytest.raises(SystemExit) as exit_info:
        run_script(lambda: TRAIN.main(argv))
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 1, stderr[-2000:]
    assert "non-finite" in stderr or "NaN or infinity" in stderr
    assert not (tmp_path / "out" / "best_model").exists() and not (tmp_path / "out" / "last_model").exists()


def test_the_model_folders_swap_as_a_whole(workspace):
    run = workspace["run"]
    for name in ("best_model", "last_model"):
        folder = run / name
        assert folder.is_symlink() and folder.resolve().parent == (run / ".model_versions").resolve()
        results = json.loads((folder / "eval_results.json").read_text())
        assert results["step"] == 2
        model = DDRNetForSemanticSegmentation.from_pretrained(folder)
        assert isinstance(model, DDRNetForSemanticSegmentation)
    assert DDRNetImageProcessor.from_pretrained(run / "best_model") is not None


@pytest.mark.slow
def test_with_two_processes_the_clear_line_is_not_buried_under_a_peer_traceback(tmp_path):
    from conftest import run_script as run_script_in_subprocess

    arguments = ["--data_dir", str(tmp_path / "nowhere"), "--output_dir", str(tmp_path / "out"), "--report_to", "none"]
    result = run_script_in_subprocess("train.py", *arguments, config="multi_cpu.yaml")
    assert result.returncode != 0
    assert "error: data_dir does not exist or is not a folder" in result.stderr
    assert "error: process 1 stopped because another process of the run failed" in result.stderr
    assert "[rank1]: Traceback" not in result.stderr and "[rank0]: Traceback" not in result.stderr


def test_a_disk_too_small_for_the_preparation_is_refused_naming_the_options(workspace, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("dataset_builders.disk_space.free_bytes", lambda folder: 150_000)
    values = {"data": workspace["data"], "tmp": tmp_path, "model": workspace["model"]}
    argv = [argument.format(**values) for argument in [*EVAL_BASE, "--model_name_or_path", "{model}"]]
    with pytest.raises(SystemExit) as exit_info:
        run_script(lambda: load_script("eval").main(argv))
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("error: preparing the cityscapes dataset needs about ") and error.count("\n") == 1
    assert "but only 150.0 kB are free on the disk holding" in error
    assert error.endswith(
        "nothing was written: free some space, point --cache_dir to a larger disk, or store the training images as "
        "they are (--train_image_storage original)\n"
    )
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.arrow"))


def test_a_full_disk_is_named_in_one_line(capsys):
    import errno

    def main() -> int:
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out/model.safetensors")

    with pytest.raises(SystemExit) as exit_info:
        run_script(main)
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "error: no space left on the device holding /data/out/model.safetensors\n"


def test_a_bad_row_read_in_a_dataloader_worker_is_the_projects_one_line(workspace, tmp_path, capsys):
    """Stored values are checked as rows are read, in a worker: torch re-raises the error with the worker's
    traceback as its message, and the user still gets the one line that names the split, the row and the values."""
    saved_dataset("bad value")(workspace, tmp_path)
    argv = [argument.format(tmp=tmp_path) for argument in [*DATASET, "--num_workers", "1"]]
    with pytest.raises(SystemExit) as exit_info:
        run_script(lambda: TRAIN.main(argv))
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 1 and "Traceback" not in stderr
    pattern = r"^error: .*ds split 'train' row \d: label: holds values \[200\] not allowed by .*ds_labels.json"
    assert re.search(pattern, stderr.strip().splitlines()[-1]), stderr[-2000:]


def test_two_runs_into_one_new_folder_at_once_the_second_is_refused(workspace, tmp_path):
    """A run owns its folder: the second of two runs started into one new --output_dir is refused with one line
    and writes nothing, and the first run's models stay its own; the lock goes with the first run's process."""
    from conftest import run_script as run_in_subprocess

    output = tmp_path / "shared"
    argv = [argument.format(data=workspace["data"], tmp=tmp_path) for argument in TRAIN_BASE]
    argv[argv.index(f"{tmp_path}/out")] = str(output)
    long_run = [*argv[:-4], "--max_train_steps", "100000", "--eval_split", "none"]  # killed long before its end
    script = str(REPO_ROOT / "scripts" / "train.py")
    first = subprocess.Popen([sys.executable, script, *long_run], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (output / "train_config.yaml").exists() and time.monotonic() < deadline:  # the first run owns it
            time.sleep(0.2)
        second = run_in_subprocess("train.py", *argv)
        assert second.returncode == 1, second.stderr[-2000:]
        assert second.stderr.strip().splitlines()[-1] == (
            f"error: --output_dir {output} is in use by another training run: wait for it to end, or choose another "
            "folder"
        )
    finally:
        first.kill()
        first.wait()
    # The first run was killed: its lock went with it, and a new run may take the folder over.
    replacing = run_in_subprocess("train.py", *argv, "--overwrite_output_dir")
    assert replacing.returncode == 0, replacing.stderr[-2000:]
