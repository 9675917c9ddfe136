from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import datasets
import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.labels import labels as official_labels
from conftest import REPO_ROOT, cache_dirs, tree_digest
from PIL import Image

from dataset_builders.cityscapes import Cityscapes, CityscapesDataError, load_cityscapes, write_split_lists
from dataset_builders.cityscapes.cityscapes import read_label_as_train_ids
from dataset_builders.cityscapes.labels import CLASS_NAMES
from dataset_builders.cityscapes.synthetic import make_synthetic_cityscapes
from dataset_builders.disk_space import InsufficientDiskSpace, size_text
from dataset_builders.split_files import prepare_splits
from ddrnet_toolkit.data.loaders import EvalDataset
from modeling_ddrnet.configuration_ddrnet import CITYSCAPES_CLASS_NAMES


def copy_root(synthetic_root, tmp_path):
    root = tmp_path / "cityscapes"
    shutil.copytree(synthetic_root, root)
    return root


def test_synthetic_layout_and_determinism(tmp_path):
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    counts = make_synthetic_cityscapes(first, num_train=3, num_val=2, num_test=1, height=96, width=192, seed=5)
    make_synthetic_cityscapes(second, num_train=3, num_val=2, num_test=1, height=96, width=192, seed=5)
    make_synthetic_cityscapes(other, num_train=3, num_val=2, num_test=1, height=96, width=192, seed=6)
    assert counts == {"train.lst": 3, "val.lst": 2, "test.lst": 1, "trainval.lst": 5}
    assert tree_digest(first) == tree_digest(second) != tree_digest(other)
    images = sorted((first / "leftImg8bit" / "val").glob("*/*_leftImg8bit.png"))
    assert [p.parent.name for p in images] == ["frankfurt", "lindau"]
    assert images[0].name == "frankfurt_000000_000019_leftImg8bit.png"
    label_path = first / "gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelIds.png"
    label = np.asarray(Image.open(label_path))
    assert Image.open(images[0]).size == (192, 96) and label.shape == (96, 192)
    ids = set(np.unique(label).tolist())
    assert {0, 1, 4} <= ids  # non-train ids, as in real gtFine label-id files
    train_ids = [i for i in ids if official_labels[i].trainId not in (255, -1)]
    assert len(train_ids) >= 8
    lines = (first / "lists" / "val.lst").read_text().splitlines()
    assert lines[0].split("\t") == [
        "leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png",
        "gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelIds.png",
    ]
    assert (first / "lists" / "test.lst").read_text().split() == [
        "leftImg8bit/test/berlin/berlin_000000_000019_leftImg8bit.png"
    ]


def test_every_label_id_maps_as_the_official_table(tmp_path):
    ids = np.arange(34, dtype=np.uint8).reshape(2, 17)
    path = tmp_path / "x_gtFine_labelIds.png"
    Image.fromarray(ids).save(path)
    mapped = read_label_as_train_ids(path, "test")
    by_id = {label.id: label.trainId for label in official_labels}
    for label_id, train_id in zip(ids.flatten(), mapped.flatten(), strict=True):
        expected = by_id[int(label_id)]
        assert train_id == (expected if 0 <= expected < 255 else 255), label_id
    assert CLASS_NAMES == CITYSCAPES_CLASS_NAMES


def test_builder_splits_columns_and_values(synthetic_root, tmp_path):
    splits = load_cityscapes(synthetic_root, cache_dir=tmp_path / "cache")
    assert {name: len(split) for name, split in splits.items()} == {
        "train": 6,
        "validation": 3,
        "test": 2,
        "trainval": 9,
    }
    assert splits["train"].column_names == ["image", "label", "name", "city"]
    assert "label" not in splits["test"].column_names
    row = splits["validation"][0]
    assert row["name"] == "frankfurt_000000_000019" and row["city"] == "frankfurt"
    label = np.asarray(row["label"])
    raw = np.asarray(Image.open(synthetic_root / "gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelIds.png"))
    by_id = {label.id: label.trainId for label in official_labels}
    expected = np.vectorize(lambda i: by_id[i] if 0 <= by_id[i] < 255 else 255)(raw)
    np.testing.assert_array_equal(label, expected)
    assert row["image"].size == (128, 64)


def test_training_images_are_stored_as_uncompressed_pngs_of_the_same_pixels(synthetic_root, tmp_path):
    splits = load_cityscapes(synthetic_root, cache_dir=tmp_path / "cache")
    lines = {name: (synthetic_root / "lists" / f"{file}.lst").read_text().splitlines() for name, file in
             (("train", "train"), ("validation", "val"))}  # fmt: skip
    for name, split in (("train", splits["train"]), ("validation", splits["validation"])):
        stored = split.cast_column("image", datasets.Image(decode=False))[0]["image"]["bytes"]
        original = (synthetic_root / lines[name][0].split("\t")[0]).read_bytes()
        if name == "validation":
            assert stored == original
        else:
            assert len(stored) > 128 * 64 * 3 and stored.startswith(b"\x89PNG")
            np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(stored))), Image.open(io.BytesIO(original)))
        # The evaluation samples: the file's pixels, uint8.
        sample = EvalDataset(split)[0]
        assert sample["pixel_values"].dtype == torch.uint8 and sample["labels"].dtype == torch.uint8
        np.testing.assert_array_equal(sample["pixel_values"].numpy(), np.asarray(Image.open(io.BytesIO(original))))


def rows(split: datasets.Dataset) -> list[dict]:
    """Every column of every row, images and labels as their stored bytes."""
    split = split.cast_column("image", datasets.Image(decode=False))
    if "label" in split.column_names:
        split = split.cast_column("label", datasets.Image(decode=False))
    return split.to_list()


def test_two_processes_prepare_the_same_rows_into_the_same_cache(synthetic_root, tmp_path):
    one = load_cityscapes(synthetic_root, cache_dir=tmp_path / "one")
    two = load_cityscapes(synthetic_root, cache_dir=tmp_path / "two", num_proc=2)
    assert list(one) == list(two)
    for name in one:
        assert rows(two[name]) == rows(one[name]), name
    # The number of processes is not part of the cache's key: one process reads what two prepared.
    assert len(two["train"].cache_files) == 2  # one Arrow file per process
    prepared = [path.relative_to(tmp_path / "two") for path in cache_dirs(tmp_path / "two")]
    assert prepared == [path.relative_to(tmp_path / "one") for path in cache_dirs(tmp_path / "one")]
    again = load_cityscapes(synthetic_root, cache_dir=tmp_path / "two")
    assert again["train"].cache_files == two["train"].cache_files and len(cache_dirs(tmp_path / "two")) == 1


def test_training_images_can_be_stored_as_their_files(synthetic_root, tmp_path):
    splits = load_cityscapes(synthetic_root, cache_dir=tmp_path / "cache", image_storage="original")
    paths = [line.split()[0] for line in (synthetic_root / "lists" / "train.lst").read_text().splitlines()]
    stored = [row["image"]["bytes"] for row in rows(splits["train"])]
    assert stored == [(synthetic_root / path).read_bytes() for path in paths]
    # A cache of its own beside the uncompressed one, with the same labels.
    uncompressed = load_cityscapes(synthetic_root, cache_dir=tmp_path / "cache")
    assert len(cache_dirs(tmp_path / "cache")) == 2
    assert [row["label"] for row in rows(uncompressed["train"])] == [row["label"] for row in rows(splits["train"])]
    with pytest.raises(CityscapesDataError, match="image_storage must be one of uncompressed, original, got 'png'"):
        load_cityscapes(synthetic_root, cache_dir=tmp_path / "cache", image_storage="png")


def test_the_size_estimate_covers_what_is_written(synthetic_root, tmp_path):
    for storage in ("uncompressed", "original"):
        cache = tmp_path / storage
        builder = Cityscapes(synthetic_root, image_storage=storage, cache_dir=str(cache))
        estimate = builder.estimated_size()
        prepare_splits(builder)
        written = sum(path.stat().st_size for path in cache.rglob("*.arrow"))
        assert written <= estimate <= 2 * written, (storage, written, estimate)


def test_a_preparation_the_disk_cannot_hold_is_refused_before_writing(synthetic_root, tmp_path, monkeypatch):
    import dataset_builders.disk_space as disk_space

    monkeypatch.setattr(disk_space, "free_bytes", lambda folder: 150_000)
    estimate = Cityscapes(synthetic_root).estimated_size()
    with pytest.raises(InsufficientDiskSpace) as refused:
        load_cityscapes(synthetic_root, cache_dir=tmp_path / "cache")
    expected = f"preparing the cityscapes dataset needs about {size_text(estimate)} in {tmp_path / 'cache'}"
    assert str(refused.value).startswith(expected)
    assert "but only 150.0 kB are free on the disk holding" in str(refused.value)
    assert not cache_dirs(tmp_path / "cache") and not list((tmp_path / "cache").rglob("*.arrow"))


def test_original_format_with_spaces_and_train_id_labels_loads_unchanged(synthetic_root, tmp_path):
    root = copy_root(synthetic_root, tmp_path)
    lists = tmp_path / "lists"
    lists.mkdir()
    line = (root / "lists" / "val.lst").read_text().splitlines()[0]
    image, label = line.split("\t")
    train_id_label = label.replace("_gtFine_labelIds.png", "_gtFine_labelTrainIds.png")
    train_ids = read_label_as_train_ids(root / label, "test")
    Image.fromarray(train_ids).save(root / train_id_label)
    (lists / "val.lst").write_text(f"{image}    {train_id_label}\n\n{line}\n")
    splits = load_cityscapes(root, list_dir=lists, cache_dir=tmp_path / "cache")
    assert list(splits) == ["validation"] and len(splits["validation"]) == 2
    first, second = (np.asarray(splits["validation"][i]["label"]) for i in range(2))
    np.testing.assert_array_equal(first, second)


def test_cache_is_reused_and_invalidated_by_changes(synthetic_root, tmp_path):
    root = copy_root(synthetic_root, tmp_path)
    cache = tmp_path / "cache"
    first = load_cityscapes(root, cache_dir=cache)["train"].cache_files
    assert load_cityscapes(root, cache_dir=cache)["train"].cache_files == first
    assert len(cache_dirs(cache)) == 1
    # Editing a split file gives a new cache.
    val = root / "lists" / "val.lst"
    val.write_text("\n".join(val.read_text().splitlines()[:2]) + "\n")
    assert len(load_cityscapes(root, cache_dir=cache)["validation"]) == 2
    assert len(cache_dirs(cache)) == 2
    # So does replacing an image.
    image = root / val.read_text().split()[0]
    os.utime(image, ns=(1, 1))
    load_cityscapes(root, cache_dir=cache)
    assert len(cache_dirs(cache)) == 3


@pytest.mark.parametrize(
    "breakage,message",
    [
        ("fields", r"val\.lst:2: expected 2 fields"),
        ("missing", r"val\.lst:1: file not found: .*nowhere\.png"),
        ("corrupt_image", r"val\.lst:1: cannot decode image .*frankfurt_000000_000019_leftImg8bit\.png"),
        ("corrupt_label", r"val\.lst:1: cannot decode label"),
        ("size", r"val\.lst:1: image .* is 128x64 but label .* is 64x32"),
        ("values", r"val\.lst:1: label ids out of range in .*: \[200\]"),
        ("empty", r"Split file is empty: .*val\.lst"),
    ],
)
def test_bad_input_names_the_culprit_and_leaves_no_cache(synthetic_root, tmp_path, breakage, message):
    root = copy_root(synthetic_root, tmp_path)
    val = root / "lists" / "val.lst"
    lines = val.read_text().splitlines()
    image, label = (root / p for p in lines[0].split("\t"))
    if breakage == "fields":
        lines[1] = lines[1] + "\textra"
    elif breakage == "missing":
        lines[0] = lines[0].replace(lines[0].split("\t")[0], "leftImg8bit/val/nowhere.png")
    elif breakage == "corrupt_image":
        image.write_bytes(image.read_bytes()[:200])
    elif breakage == "corrupt_label":
        label.write_bytes(b"not a png at all")
    elif breakage == "size":
        Image.open(label).resize((64, 32), Image.NEAREST).save(label)
    elif breakage == "values":
        array = np.asarray(Image.open(label)).copy()
        array[0, 0] = 200
        Image.fromarray(array).save(label)
    elif breakage == "empty":
        lines = []
    val.write_text("\n".join(lines) + "\n")
    cache = tmp_path / "cache"
    with pytest.raises(CityscapesDataError, match=message):
        load_cityscapes(root, cache_dir=cache)
    assert cache_dirs(cache) == []
    assert not [p for p in cache.rglob("*") if p.suffix == ".arrow"]


def test_missing_data_dir_and_lists(tmp_path):
    with pytest.raises(CityscapesDataError, match="data_dir does not exist"):
        load_cityscapes(tmp_path / "nowhere")
    (tmp_path / "root").mkdir()
    with pytest.raises(CityscapesDataError, match="No split file in .*make_lists"):
        load_cityscapes(tmp_path / "root")


def test_make_lists_rewrites_the_generator_lists(synthetic_root, tmp_path):
    out = tmp_path / "lists"
    script = REPO_ROOT / "scripts" / "make_lists.py"
    result = subprocess.run(
        [sys.executable, str(script), "--data_dir", str(synthetic_root), "--list_dir", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "train.lst: 6 samples" in result.stdout
    for name in ("train.lst", "val.lst", "test.lst", "trainval.lst"):
        assert (out / name).read_text() == (synthetic_root / "lists" / name).read_text()
    with pytest.raises(CityscapesDataError, match="No leftImg8bit"):
        write_split_lists(tmp_path)
