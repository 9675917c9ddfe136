"""The split-file builder on the synthetic six-class dataset: encoded class ids, the cache, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import cache_dirs, tree_digest
from PIL import Image

from dataset_builders.errors import DatasetError
from dataset_builders.label_space import LabelSpace
from dataset_builders.split_files import load_split_files
from dataset_builders.synthetic_custom import CLASS_NAMES, make_synthetic_custom


def raw_label(root, line: str) -> np.ndarray:
    return np.asarray(Image.open(root / line.split()[1]))


def copy_split_files(synthetic_custom, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synthetic_custom.split_files, root)
    return root


def test_synthetic_custom_is_deterministic_and_varied(synthetic_custom, tmp_path):
    again = make_synthetic_custom(tmp_path / "again", num_train=4, num_val=3, num_test=2)
    other = make_synthetic_custom(tmp_path / "other", num_train=4, num_val=3, num_test=2, seed=1)
    assert tree_digest(again.split_files) == tree_digest(synthetic_custom.split_files)
    assert tree_digest(other.split_files) != tree_digest(synthetic_custom.split_files)
    root = synthetic_custom.split_files
    lines = (root / "lists" / "train.lst").read_text().splitlines()
    sizes = {Image.open(root / line.split()[0]).size for line in lines}
    assert len(sizes) > 1 and all(48 <= side <= 96 for size in sizes for side in size)
    values = set(np.unique(np.concatenate([raw_label(root, line).ravel() for line in lines])).tolist())
    assert values <= {*range(6), 255} and set(range(6)) <= values
    assert [len(line.split()) for line in (root / "lists" / "test.lst").read_text().splitlines()] == [1, 1]
    assert (root / "lists" / "trainval.lst").read_text().count("\n") == 7
    assert LabelSpace.from_labels_file(synthetic_custom.labels_file).names == CLASS_NAMES
    reduced = LabelSpace.from_labels_file(synthetic_custom.reduced_labels_file, reduce_labels=True)
    assert reduced.names == CLASS_NAMES[1:]


@pytest.mark.parametrize("reduce_labels", [False, True])
def test_split_files_store_encoded_class_ids(synthetic_custom, tmp_path, reduce_labels):
    root = synthetic_custom.split_files
    labels_file = synthetic_custom.reduced_labels_file if reduce_labels else synthetic_custom.labels_file
    space = LabelSpace.from_labels_file(labels_file, reduce_labels=reduce_labels)
    splits = load_split_files(root, space, cache_dir=tmp_path / "cache")
    assert {name: len(split) for name, split in splits.items()} == {
        "train": 4,
        "validation": 3,
        "test": 2,
        "trainval": 7,
    }
    assert splits["train"].column_names == ["image", "label", "name"]
    assert splits["test"].column_names == ["image", "name"]
    for line, row in zip((root / "lists" / "val.lst").read_text().splitlines(), splits["validation"], strict=True):
        raw = raw_label(root, line)
        expected = np.where(raw == 0, 255, raw - 1) if reduce_labels else raw.copy()
        expected[raw == 255] = 255
        np.testing.assert_array_equal(np.asarray(row["label"]), expected)
        np.testing.assert_array_equal(np.asarray(row["label"]), space.encode(raw))
        np.testing.assert_array_equal(np.asarray(row["image"]), np.asarray(Image.open(root / line.split()[0])))
        assert row["name"] == line.split()[0].removesuffix(".png")


def test_split_files_cache_follows_the_label_space(synthetic_custom, tmp_path):
    labels_file = tmp_path / "labels.json"
    shutil.copy(synthetic_custom.labels_file, labels_file)
    cache = tmp_path / "cache"
    root = synthetic_custom.split_files
    first = load_split_files(root, LabelSpace.from_labels_file(labels_file), cache_dir=cache)["train"].cache_files
    assert (
        load_split_files(root, LabelSpace.from_labels_file(labels_file), cache_dir=cache)["train"].cache_files == first
    )
    assert len(cache_dirs(cache)) == 1
    content = json.loads(labels_file.read_text())
    content["id2label"]["5"] = "traffic_sign"
    labels_file.write_text(json.dumps(content))
    load_split_files(root, LabelSpace.from_labels_file(labels_file), cache_dir=cache)
    assert len(cache_dirs(cache)) == 2


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("values", r"val\.lst:2: label .*val_0001\.png: holds values \[6, 9\] not allowed by .*labels\.json \(allowed"),
        ("size", r"val\.lst:2: image images/val/val_0001\.png is \d+x\d+ but label .* is 8x8"),
        ("rgb", r"val\.lst:2: label .*val_0001\.png must be a single-channel image, got shape \(\d+, \d+, 3\)"),
        ("mode", r"val\.lst:2: label .*val_0001\.png has PIL mode 'I;16'"),
        ("image", r"val\.lst:2: image .*val_0001\.png has PIL mode 'I;16'"),
        ("escape", r"val\.lst:2: '\.\./x\.png' is not a path inside the data folder"),
    ],
)
def test_split_files_bad_input_names_the_culprit_and_leaves_no_cache(
    synthetic_custom, label_space, tmp_path, breakage, message
):
    root = copy_split_files(synthetic_custom, tmp_path)
    val = root / "lists" / "val.lst"
    image, label = (root / path for path in val.read_text().splitlines()[1].split())
    if breakage == "values":
        array = np.asarray(Image.open(label)).copy()
        array[0, :2] = (9, 6)
        Image.fromarray(array).save(label)
    elif breakage == "size":
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(label)
    elif breakage == "rgb":
        Image.open(label).convert("RGB").save(label)
    elif breakage == "mode":
        Image.fromarray(np.asarray(Image.open(label)).astype(np.uint16)).save(label)
    elif breakage == "image":
        Image.fromarray(np.zeros((8, 8), np.uint16)).save(image)
    elif breakage == "escape":
        val.write_text(val.read_text().replace("images/val/val_0001.png", "../x.png"))
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match=message):
        load_split_files(root, label_space, cache_dir=cache)
    assert cache_dirs(cache) == [] and not list(cache.rglob("*.arrow"))


def test_split_files_missing_data_dir_and_lists(label_space, tmp_path):
    with pytest.raises(DatasetError, match="data_dir does not exist"):
        load_split_files(tmp_path / "nowhere", label_space)
    with pytest.raises(DatasetError, match=r"No split file in .*lists .*expected any of train\.lst"):
        load_split_files(tmp_path, label_space)
