from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys

import cv2
import datasets
import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.labels import labels as official_labels
from conftest import REPO_ROOT
from PIL import Image
from previous_pipeline import PreviousTrainAugmentation

from dataset_builders.cityscapes import CityscapesDataError, load_cityscapes, write_split_lists
from dataset_builders.cityscapes.cityscapes import read_label_as_train_ids
from dataset_builders.cityscapes.labels import CLASS_NAMES
from dataset_builders.cityscapes.synthetic import make_synthetic_cityscapes
from ddrnet_toolkit.data.augmentation import TrainAugmentation
from ddrnet_toolkit.data.loaders import EpochShuffleSampler, EvalDataset, TrainDataset
from ddrnet_toolkit.data.normalization import PAD_COLOUR, normalize, normalize_on_device
from modeling_ddrnet.configuration_ddrnet import CITYSCAPES_CLASS_NAMES


def tree_digest(root) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


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


def cache_dirs(cache):
    return sorted(p for p in cache.rglob("dataset_info.json"))


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


def test_train_augmentation_scales_pads_crops_and_flips():
    image = np.full((100, 200, 4), 255, np.uint8)
    label = np.zeros((100, 200), np.uint8)
    label[:, 100:] = 13
    augmentation = TrainAugmentation(crop_size=(128, 160), base_size=200, scale_range=(0.5, 0.5))
    pixels, labels, valid_size = augmentation(image, label, np.random.default_rng(0))
    # Scale 0.5 gives a 100x50 image inside a 160x128 crop: the rest is padding.
    assert pixels.shape == (128, 160, 3) and pixels.dtype == np.uint8 and labels.shape == (128, 160)
    assert valid_size == (50, 100)
    assert (labels[50:] == 255).all() and (labels[:, 100:] == 255).all()
    assert (pixels[50:] == PAD_COLOUR).all() and (pixels[:50, :100] == 255).all()
    assert set(np.unique(labels[:50, :100])) == {0, 13}
    batch = {"pixel_values": torch.from_numpy(pixels)[None], "valid_size": torch.tensor([valid_size])}
    normalized, no_labels = normalize_on_device(batch)
    assert normalized.shape == (1, 3, 128, 160) and no_labels is None
    assert (normalized[:, :, 50:] == 0).all() and (normalized[:, :, :, 100:] == 0).all()
    white = (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(normalized[0, :, 0, 0].numpy(), white, rtol=1e-5)
    flips = set()
    for seed in range(20):
        _, labels, _ = augmentation(image, label, np.random.default_rng(seed))
        flips.add(int(labels[0, 0]))
    assert flips == {0, 13}  # both orientations occur


def test_normalize_on_device_equals_the_host_normalization_in_either_memory_format():
    image = np.random.default_rng(0).integers(0, 256, (2, 24, 40, 3), dtype=np.uint8)
    labels = np.random.default_rng(1).integers(0, 19, (2, 24, 40), dtype=np.uint8)
    batch = {"pixel_values": torch.from_numpy(image), "labels": torch.from_numpy(labels)}
    expected = torch.from_numpy(np.stack([normalize(i) for i in image]))
    for channels_last in (False, True):
        pixels, long_labels = normalize_on_device(batch, channels_last)
        assert torch.equal(pixels, expected) and long_labels.dtype == torch.int64
        assert pixels.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def scene(height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random label blocks and an RGBA image whose colour names the label of each pixel."""
    rng = np.random.default_rng(seed)
    label = np.kron(rng.integers(0, 19, (height // 8, width // 8)), np.ones((8, 8), np.int64)).astype(np.uint8)
    # 2x2 ignore specks: alignment down to a pixel, and none falls between the nearest samples at scale 0.5.
    specks = np.kron(rng.random((height // 2, width // 2)) < 0.01, np.ones((2, 2), bool))
    label[specks] = 255
    palette = rng.integers(0, 256, (256, 4), dtype=np.uint8)
    palette[:, 3] = 255
    return palette[label], label


def test_crop_first_keeps_the_previous_pipelines_draws_labels_and_pixels():
    """Same scale, crop window and flip per draw as the previous PIL pipeline: its labels equal ours bit for bit,
    and our pixels equal a whole-image bilinear resize then crop within one grey level (the previous pipeline's,
    which antialiased, at scales >= 1)."""
    image, label = scene(96, 192, seed=0)
    new = TrainAugmentation(crop_size=(64, 96), base_size=192)
    previous = PreviousTrainAugmentation(crop_size=(64, 96), base_size=192)
    scales, corners, flips = [], set(), set()
    for draw in range(160):
        pixels, labels, (valid_h, valid_w) = new(image, label, np.random.default_rng([7, draw]))
        rng = np.random.default_rng([7, draw])
        old_pixels, old_labels = previous(Image.fromarray(image[..., :3]), Image.fromarray(label), rng)
        np.testing.assert_array_equal(labels, old_labels)

        rng = np.random.default_rng([7, draw])
        scale = round(float(rng.choice(new.scales)), 1)
        size = (int(192 * scale + 0.5), int(96 * scale + 0.5))
        top, left = int(rng.integers(0, max(size[1] - 64, 0) + 1)), int(rng.integers(0, max(size[0] - 96, 0) + 1))
        flipped = rng.random() < 0.5
        scales.append(scale)
        corners.add((top, left))
        flips.add(flipped)
        assert (valid_h, valid_w) == (min(64, size[1] - top), min(96, size[0] - left))
        resized = cv2.resize(image[..., :3], size, interpolation=cv2.INTER_LINEAR)[top : top + 64, left : left + 96]
        if flipped:
            resized = resized[:, ::-1]
        difference = np.abs(pixels[:valid_h, :valid_w].astype(int) - resized)
        assert difference.max() <= 1, (draw, scale)
        if scale >= 1:
            host = normalize(pixels)
            host[:, valid_h:], host[:, :, valid_w:] = 0, 0
            np.testing.assert_allclose(host, old_pixels, atol=1.01 / (255 * 0.224))
    assert sorted(set(scales)) == [round(0.5 + i / 10, 1) for i in range(16)]
    assert len(corners) > 40 and flips == {False, True}


def test_every_label_pixel_still_marks_its_object():
    """Wherever a label's 3x3 neighbourhood is one class, the image there has that class's colour."""
    image, label = scene(128, 256, seed=1)
    palette = {int(v): image[label == v][0, :3] for v in np.unique(label)}
    augmentation = TrainAugmentation(crop_size=(96, 160), base_size=256)
    for draw in range(48):
        pixels, labels, (valid_h, valid_w) = augmentation(image, label, np.random.default_rng([3, draw]))
        pixels, labels = pixels[:valid_h, :valid_w], labels[:valid_h, :valid_w]
        windows = np.lib.stride_tricks.sliding_window_view(labels, (3, 3))
        uniform = (windows == windows[..., 1:2, 1:2]).all(axis=(-1, -2))
        inside = pixels[1:-1, 1:-1][uniform]
        expected = np.stack([palette[int(v)] for v in labels[1:-1, 1:-1][uniform]])
        assert np.abs(inside.astype(int) - expected).max() <= 1, draw


def test_augmentation_draws_the_original_scales():
    augmentation = TrainAugmentation()
    np.testing.assert_allclose(augmentation.scales, 0.5 + np.arange(16) / 10)
    with pytest.raises(ValueError, match="scale_range"):
        TrainAugmentation(scale_range=(2.0, 1.0))


def test_train_dataset_is_reproducible_per_draw(synthetic_root, tmp_path):
    split = load_cityscapes(synthetic_root, cache_dir=tmp_path / "cache")["train"]
    dataset = TrainDataset(split, TrainAugmentation(crop_size=(48, 64), base_size=128), seed=3)
    first, again = dataset[7], dataset[7]
    assert first["pixel_values"].shape == (48, 64, 3) and first["pixel_values"].dtype == torch.uint8
    assert first["labels"].shape == (48, 64) and first["labels"].dtype == torch.uint8
    assert all(torch.equal(first[key], again[key]) for key in first)
    sampler = EpochShuffleSampler(6, seed=1)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert sorted(epoch0) == list(range(6)) and sorted(epoch1) == list(range(6, 12))
