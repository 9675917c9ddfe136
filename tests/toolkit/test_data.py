"""The data subpackage: augmentation, normalization, loaders, class weights."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from previous_pipeline import PreviousTrainAugmentation

from dataset_builders.cityscapes import load_cityscapes
from ddrnet_toolkit.data.augmentation import TrainAugmentation, jitter_colors
from ddrnet_toolkit.data.class_weights import count_label_pixels, weights_from_counts
from ddrnet_toolkit.data.loaders import EpochShuffleSampler, TrainDataset
from ddrnet_toolkit.data.normalization import PAD_COLOUR, normalize, normalize_on_device


def rare_class_scene() -> np.ndarray:
    """A 512 x 512 label: class 0 everywhere, class 7 in one 24 x 24 square (0.2 % of the pixels)."""
    label = np.zeros((512, 512), dtype=np.uint8)
    label[400:424, 60:84] = 7
    return label


def share_of_crops_with_the_rare_class(probability: float, draws: int = 600) -> float:
    augmentation = TrainAugmentation((128, 128), 512, (1.0, 1.0), flip=False, rare_class_probability=probability)
    label = rare_class_scene()
    image = np.zeros((512, 512, 3), dtype=np.uint8)
    hits = 0
    for draw in range(draws):
        _, labels, _ = augmentation(image, label, np.random.default_rng([5, draw]))
        hits += bool((labels == 7).any())
    return hits / draws


def test_rare_class_crops_are_biased_towards_the_rare_class():
    uniform, biased, always = (share_of_crops_with_the_rare_class(p) for p in (0.0, 0.5, 1.0))
    # A uniform crop holds the square when its top is in [273, 384] and its left in [0, 83], of 385 x 385 offsets.
    expected_uniform = (112 / 385) * (84 / 385)
    # Always: class 7 is drawn half the time (2 classes present), and the crop then holds it for sure.
    expected_always = 0.5 + 0.5 * expected_uniform
    expected_biased = (expected_uniform + expected_always) / 2
    for measured, expected in ((uniform, expected_uniform), (biased, expected_biased), (always, expected_always)):
        assert measured == pytest.approx(expected, abs=0.06)  # 600 draws: a standard deviation of 0.02 at most
    assert always > 6 * uniform


def test_rare_class_crops_are_deterministic_per_draw_and_keep_the_original_draws_when_off():
    augmentation = TrainAugmentation((96, 96), 256, (0.5, 2.0), rare_class_probability=0.7, color_jitter=0.4)
    label = rare_class_scene()
    image = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    first = augmentation(image, label, np.random.default_rng([1, 42]))
    second = augmentation(image, label, np.random.default_rng([1, 42]))
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    plain, off = TrainAugmentation((96, 96), 256), TrainAugmentation((96, 96), 256, rare_class_probability=0.0)
    for draw in range(20):
        expected = plain(image, label, np.random.default_rng([1, draw]))
        produced = off(image, label, np.random.default_rng([1, draw]))
        assert all(np.array_equal(a, b) for a, b in zip(expected, produced, strict=True))


def test_an_all_ignored_label_still_gives_a_crop():
    augmentation = TrainAugmentation((64, 64), 128, (1.0, 1.0), rare_class_probability=1.0)
    label = np.full((128, 128), 255, dtype=np.uint8)
    pixels, labels, valid = augmentation(np.zeros((128, 128, 3), np.uint8), label, np.random.default_rng(0))
    assert pixels.shape == (64, 64, 3) and (labels == 255).all() and valid == (64, 64)


def test_color_jitter_factors():
    rng = np.random.default_rng(0)
    image = rng.integers(30, 220, (16, 16, 3), dtype=np.uint8)
    assert np.abs(jitter_colors(image, np.ones(3)).astype(int) - image).max() <= 1
    brighter = jitter_colors(image, np.array([1.2, 1.0, 1.0])).astype(float)
    assert brighter.mean() == pytest.approx(np.clip(image * 1.2, 0, 255).mean(), abs=0.6)
    grey = jitter_colors(image, np.array([1.0, 1.0, 0.0]))
    assert np.abs(grey.astype(int) - grey[..., :1]).max() <= 1  # no saturation: R = G = B
    flat = jitter_colors(image, np.array([1.0, 0.0, 1.0]))
    assert flat.std() < 1.0  # no contrast: one grey level


def test_color_jitter_leaves_the_padding_alone():
    augmentation = TrainAugmentation((64, 64), 32, (1.0, 1.0), flip=False, color_jitter=0.9)
    image = np.full((32, 32, 3), 200, dtype=np.uint8)
    pixels, _, (valid_h, valid_w) = augmentation(image, np.zeros((32, 32), np.uint8), np.random.default_rng(3))
    assert (valid_h, valid_w) == (32, 32)
    assert (pixels[valid_h:] == PAD_COLOUR).all() and (pixels[:, valid_w:] == PAD_COLOUR).all()
    assert not (pixels[:valid_h, :valid_w] == 200).all()  # the image itself was jittered


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


def test_counts_and_weights_follow_the_stated_formula():
    labels = [np.array([[0, 0, 0, 1], [0, 0, 255, 1]], np.uint8), np.array([[0, 2, 0, 0]], np.uint8)]
    counts = count_label_pixels([{"label": label} for label in labels], num_labels=4, show_progress=False)
    assert counts.tolist() == [8, 2, 1, 0]  # 255 is not a class; class 3 is absent
    raw = [1 / math.log(1.02 + share) for share in (8 / 11, 2 / 11, 1 / 11)]
    expected = [w / (sum(raw) / 3) for w in raw] + [1.0]
    assert weights_from_counts(counts) == pytest.approx(expected, abs=1e-6)
    assert weights_from_counts(counts)[2] > weights_from_counts(counts)[1] > weights_from_counts(counts)[0]


def test_a_split_without_labelled_pixels_is_refused():
    with pytest.raises(ValueError, match="no labelled pixel"):
        weights_from_counts(np.zeros(3))
