"""The three ways in for a non-Cityscapes dataset: split files, a save_to_disk folder, parquet files (and the Hub)."""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil

import datasets
import numpy as np
import pytest
from PIL import Image

from dataset_builders.errors import DatasetError
from dataset_builders.image_label_datasets import load_image_label_dataset
from dataset_builders.label_space import LabelSpace
from dataset_builders.split_files import load_split_files

COLUMNS = {"image_column": "pixel_image", "label_column": "mask"}


def tree_state(root) -> str:
    """Names, bytes and modification times of every file: a loader must change none of them."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(path.relative_to(root).as_posix().encode())
        if path.is_file():
            digest.update(path.read_bytes() + str(path.stat().st_mtime_ns).encode())
    return digest.hexdigest()


def test_save_to_disk_and_parquet_rename_columns_and_keep_the_folder_untouched(synthetic_custom, label_space, tmp_path):
    for folder in (synthetic_custom.save_to_disk, synthetic_custom.parquet):
        before = tree_state(folder)
        splits = load_image_label_dataset(folder, label_space, **COLUMNS, cache_dir=tmp_path / "cache")
        assert list(splits) == ["train", "validation", "test"]
        assert splits["train"].column_names == ["image", "label", "name"]
        assert splits["test"].column_names == ["image", "name"]
        assert [row["name"] for row in splits["validation"]] == ["000000", "000001", "000002"]
        assert tree_state(folder) == before


def test_split_names_are_normalised_in_both_parquet_layouts(synthetic_custom, label_space, tmp_path):
    flat, nested = tmp_path / "flat", tmp_path / "nested"
    flat.mkdir()
    for split, stored in (("train", "train"), ("validation", "valid"), ("test", "test")):
        source = synthetic_custom.parquet / f"{split}-00000-of-00001.parquet"
        shutil.copy(source, flat / f"{stored}-00000-of-00001.parquet")
        (nested / stored.upper()).mkdir(parents=True)
        shutil.copy(source, nested / stored.upper() / "part-0.parquet")
    for folder in (flat, nested):
        splits = load_image_label_dataset(folder, label_space, **COLUMNS, cache_dir=tmp_path / "cache")
        assert {name: len(split) for name, split in splits.items()} == {"train": 4, "validation": 3, "test": 2}
    shutil.copy(flat / "train-00000-of-00001.parquet", nested)
    with pytest.raises(DatasetError, match=r"both as <split>-\*\.parquet \(\['train'\]\) and in split folders"):
        load_image_label_dataset(nested, label_space, **COLUMNS, cache_dir=tmp_path / "cache")


def save(tmp_path, name, splits: dict[str, dict]) -> str:
    """A DatasetDict folder; columns named `pixel_image` or `mask` are images, others strings."""
    folder = tmp_path / name
    datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict(
                columns,
                features=datasets.Features(
                    {
                        key: datasets.Image() if key in ("pixel_image", "mask") else datasets.Value("string")
                        for key in columns
                    }
                ),
            )
            for split, columns in splits.items()
        }
    ).save_to_disk(folder)
    return folder


def png(array) -> dict:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def test_missing_columns_and_splits_list_what_exists(synthetic_custom, label_space, tmp_path):
    folder = synthetic_custom.save_to_disk
    with pytest.raises(DatasetError, match=r"split 'train' has no image column 'image'; columns present: \['pixel_"):
        load_image_label_dataset(folder, label_space, label_column="mask")
    with pytest.raises(DatasetError, match=r"split 'train' has no label column 'label'; columns present: \["):
        load_image_label_dataset(folder, label_space, image_column="pixel_image")
    image = png(np.zeros((4, 4, 3)))
    strings = save(tmp_path, "strings", {"train": {"pixel_image": [image], "label_path": ["a.png"]}})
    with pytest.raises(DatasetError, match=r"split 'train': the label column 'label_path' is Value\('string'.*not an"):
        load_image_label_dataset(strings, label_space, image_column="pixel_image", label_column="label_path")
    only_test = save(tmp_path, "only_test", {"test": {"pixel_image": [image]}, "extra": {"pixel_image": [image]}})
    with pytest.raises(DatasetError, match=r"no train or validation split .*splits present: \['extra', 'test'\]"):
        load_image_label_dataset(only_test, label_space, **COLUMNS)
    twice = save(tmp_path, "twice", {"val": {"pixel_image": [image]}, "validation": {"pixel_image": [image]}})
    with pytest.raises(DatasetError, match=r"splits 'val' and 'validation' both name the validation split"):
        load_image_label_dataset(twice, label_space, **COLUMNS)


def test_invalid_stored_value_is_named_when_its_row_is_read(label_space, tmp_path):
    good, bad = np.zeros((6, 8), np.uint8), np.zeros((6, 8), np.uint8)
    bad[0, 0], bad[1, 1] = 7, 200
    image = png(np.zeros((6, 8, 3)))
    folder = save(tmp_path, "bad", {"val": {"pixel_image": [image, image], "mask": [png(good), png(bad)]}})
    split = load_image_label_dataset(folder, label_space, **COLUMNS)["validation"]
    assert np.asarray(split[0]["label"]).max() == 0
    assert np.asarray(pickle.loads(pickle.dumps(split))[0]["label"]).max() == 0  # into data-loader workers
    with pytest.raises(
        DatasetError, match=r"bad split 'val' row 1: label: holds values \[7, 200\] not allowed by .*labe"
    ):
        split[1]
    with pytest.raises(DatasetError, match=r"split 'val' row 1: label: holds values \[7, 200\]"):
        split.select([1, 0])[:2]
    with pytest.raises(DatasetError, match=r"split 'val' row 1: label: holds values \[7, 200\]"):
        split["label"][1]
    small = save(tmp_path, "small", {"val": {"pixel_image": [image], "mask": [png(np.zeros((3, 8)))]}})
    with pytest.raises(DatasetError, match=r"split 'val' row 0: image is 8x6 but label is 8x3"):
        load_image_label_dataset(small, label_space, **COLUMNS)["validation"][0]


def test_hub_names_and_missing_folders_give_clear_errors(synthetic_custom, label_space, tmp_path):
    with pytest.raises(DatasetError, match=r"cannot load 'someone/not-here' from the Hub \(HF_HUB_OFFLINE"):
        load_image_label_dataset("someone/not-here", label_space, cache_dir=tmp_path / "cache")
    with pytest.raises(DatasetError, match=r"dataset folder not found: .*nowhere"):
        load_image_label_dataset(tmp_path / "nowhere", label_space)
    with pytest.raises(DatasetError, match=r"holds neither dataset_dict\.json .* it holds \[\]"):
        load_image_label_dataset(tmp_path, label_space)
    with pytest.raises(DatasetError, match=r"is a file; give a folder"):
        load_image_label_dataset(synthetic_custom.labels_file, label_space)
    with pytest.raises(DatasetError, match=r"config_name 'x' applies to Hub datasets only"):
        load_image_label_dataset(synthetic_custom.save_to_disk, label_space, config_name="x")


@pytest.mark.parametrize("reduce_labels", [False, True])
def test_all_three_ways_in_give_the_same_images_and_labels(synthetic_custom, tmp_path, reduce_labels):
    labels_file = synthetic_custom.reduced_labels_file if reduce_labels else synthetic_custom.labels_file
    space = LabelSpace.from_labels_file(labels_file, reduce_labels=reduce_labels)
    ways = [
        load_split_files(synthetic_custom.split_files, space, cache_dir=tmp_path / "cache"),
        load_image_label_dataset(synthetic_custom.save_to_disk, space, **COLUMNS),
        load_image_label_dataset(synthetic_custom.parquet, space, **COLUMNS, cache_dir=tmp_path / "cache"),
    ]
    for split in ("train", "validation", "test"):
        first, *others = (way[split] for way in ways)
        for other in others:
            assert len(other) == len(first)
            for index in range(len(first)):
                a, b = first[index], other[index]
                np.testing.assert_array_equal(np.asarray(a["image"]), np.asarray(b["image"]))
                if split != "test":
                    assert a["label"].mode == b["label"].mode == "L"
                    np.testing.assert_array_equal(np.asarray(a["label"]), np.asarray(b["label"]))
