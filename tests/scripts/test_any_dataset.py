"""Training, evaluation, prediction and publishing on a dataset that is not Cityscapes, through each way in: split
files with a labels file, a `save_to_disk` folder and a folder of parquet files (6 classes, background 0, images
of varying sizes)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from conftest import load_script, tiny_config
from PIL import Image

from ddrnet_toolkit.commands.arguments import dataset_from_arguments
from ddrnet_toolkit.commands.runner import run_script
from modeling_ddrnet import DDRNetForSemanticSegmentation, DDRNetImageProcessor

CLASSES = ["background", "road", "lane_marking", "vehicle", "pedestrian", "sign"]


TRAIN, EVAL, PREDICT, PUSH = (load_script(name) for name in ("train", "eval", "predict", "push_to_hub"))
TINY = ["--per_device_train_batch_size", "2", "--crop_size", "64", "64", "--base_size", "96", "--num_workers", "0"]
TINY += ["--report_to", "none", "--ohem_min_kept", "500", "--per_device_eval_batch_size", "3"]


def data_arguments(way: str, data) -> list[str]:
    labels = ["--labels_file", str(data.labels_file)]
    if way == "split_files":
        return ["--data_dir", str(data.split_files), *labels]
    folder = data.save_to_disk if way == "save_to_disk" else data.parquet
    return ["--dataset_name", str(folder), "--image_column", "pixel_image", "--label_column", "mask", *labels]


@pytest.fixture(scope="module")
def nineteen_class_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("nineteen")
    torch.manual_seed(0)
    DDRNetForSemanticSegmentation(tiny_config()).save_pretrained(path)
    DDRNetImageProcessor().save_pretrained(path)
    return path


@pytest.mark.parametrize("way", ["split_files", "save_to_disk", "parquet"])
def test_train_eval_predict_and_push_through_each_way_in(way, synthetic_custom, nineteen_class_model, tmp_path):
    data = data_arguments(way, synthetic_custom)
    run = tmp_path / "run"
    train_args = [*data, "--cache_dir", str(tmp_path / "cache"), "--output_dir", str(run), *TINY]
    train_args += ["--model_name_or_path", str(nineteen_class_model), "--ignore_mismatched_sizes"]
    assert TRAIN.main([*train_args, "--max_train_steps", "2", "--eval_steps", "2", "--class_weights", "auto"]) == 0

    best = run / "best_model"
    config = json.loads((best / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(6)] == CLASSES
    labels = json.loads((best / "labels.json").read_text())
    record = json.loads((best / "training_args.json").read_text())
    assert record["class_weights"] == "auto" and len(record["class_weight_values"]) == 6
    assert record["class_weights_formula"].startswith("w_c = 1 / ln(1.02 + p_c)")

    output = tmp_path / "eval.json"
    eval_args = [*data, "--cache_dir", str(tmp_path / "cache"), "--model_name_or_path", str(best)]
    assert EVAL.main([*eval_args, "--per_device_eval_batch_size", "3", "--output_file", str(output)]) == 0
    results = json.loads(output.read_text())
    assert list(results["per_category_iou"]) == CLASSES and 0 <= results["mean_iou"] <= 1

    images = sorted((synthetic_custom.split_files / "images" / "val").iterdir())
    predictions = tmp_path / "predictions"
    predict_args = ["--model_name_or_path", str(best), "--inputs", *map(str, images), "--output_dir", str(predictions)]
    assert PREDICT.main(predict_args) == 0
    colours = {tuple(c) for c in labels["colors"]}
    for image in images:
        mask = np.asarray(Image.open(predictions / "color" / f"{image.stem}.png").convert("RGB"))
        assert {tuple(c) for c in np.unique(mask.reshape(-1, 3), axis=0)} <= colours
        assert mask.shape[:2] == Image.open(image).size[::-1]

    assert PUSH.main(["--model_name_or_path", str(best), "--hub_dir", str(tmp_path / "hub"), "--repo_id", "me/c"]) == 0
    card = (tmp_path / "hub" / "me" / "c" / "README.md").read_text()
    assert all(f"| {name} |" in card for name in CLASSES) and "into the 6 classes of" in card
    assert f"mean IoU **{100 * results['mean_iou']:.2f}**" in card  # training's evaluation equals eval.py's


def test_fine_tuning_a_19_class_run_keeps_the_backbone_and_starts_the_heads_afresh(
    synthetic_custom, nineteen_class_model, tmp_path
):
    argv = [*data_arguments("split_files", synthetic_custom), "--output_dir", str(tmp_path / "out"), *TINY]
    argv += ["--model_name_or_path", str(nineteen_class_model), "--ignore_mismatched_sizes"]
    args = TRAIN.parse_args(argv)
    dataset = dataset_from_arguments(args)
    model = TRAIN.model_from_arguments(args, dataset, dataset.splits["train"])
    original = DDRNetForSemanticSegmentation.from_pretrained(nineteen_class_model).state_dict()
    for name, tensor in model.state_dict().items():
        if name.startswith("ddrnet."):
            assert torch.equal(tensor, original[name]), name
    assert model.decode_head.conv2.weight.shape[0] == 6 and original["decode_head.conv2.weight"].shape[0] == 19
    assert model.config.id2label == dict(enumerate(CLASSES)) and model.config.class_weights is None


def test_reduce_labels_makes_background_ignored(synthetic_custom, tmp_path):
    argv = ["--data_dir", str(synthetic_custom.split_files), "--labels_file", str(synthetic_custom.reduced_labels_file)]
    argv += ["--reduce_labels", "--cache_dir", str(tmp_path / "cache"), "--output_dir", str(tmp_path / "out"), *TINY]
    argv += ["--variant", "ddrnet-23-slim", "--max_train_steps", "1", "--eval_split", "none"]
    assert TRAIN.main(argv) == 0
    config = json.loads((tmp_path / "out" / "last_model" / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(5)] == CLASSES[1:]


@pytest.mark.parametrize(
    "extra,code,message",
    [
        (["--image_column", "picture"], 1, "picture.*pixel_image.*mask"),
        (
            ["--train_split", "extra"],
            1,
            "--train_split extra is not a split of save_to_disk; choose from train, validation, test",
        ),
        (["--labels_file", None], 2, "--dataset_name needs --labels_file"),
    ],
    ids=["unknown-column", "split-absent", "missing-labels-file"],
)
def test_clear_errors_for_datasets_dataset_mistakes(synthetic_custom, tmp_path, capsys, extra, code, message):
    argv = [*data_arguments("save_to_disk", synthetic_custom), "--output_dir", str(tmp_path / "out"), *TINY]
    argv += ["--variant", "ddrnet-23-slim", "--max_train_steps", "1", "--eval_split", "none"]
    if extra[1] is None:
        index = argv.index(extra[0])
        del argv[index : index + 2]
    else:
        argv += extra
    with pytest.raises(SystemExit) as exit_info:
        run_script(lambda: TRAIN.main(argv))
    stderr = capsys.readouterr().err
    assert exit_info.value.code == code and "Traceback" not in stderr
    assert re.search(message, stderr.strip().splitlines()[-1]), stderr[-500:]


def test_label_values_outside_the_labels_file_name_the_culprit(synthetic_custom, tmp_path, capsys):
    labels = tmp_path / "four_classes.json"
    labels.write_text(json.dumps({str(i): name for i, name in enumerate(CLASSES[:4])}))
    argv = ["--data_dir", str(synthetic_custom.split_files), "--labels_file", str(labels)]
    argv += ["--cache_dir", str(tmp_path / "cache"), "--output_dir", str(tmp_path / "out"), *TINY]
    argv += ["--variant", "ddrnet-23-slim", "--max_train_steps", "1"]
    with pytest.raises(SystemExit) as exit_info:
        run_script(lambda: TRAIN.main(argv))
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 1
    assert ".lst:" in last_line and "four_classes.json" in last_line, last_line
