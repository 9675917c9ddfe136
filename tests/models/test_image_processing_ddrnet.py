"""DDRNetImageProcessor: the torch-tensor path against the PIL path, and post-processing with scores."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.image_processing_outputs import SemanticSegmentationPostProcessorOutput
from transformers.modeling_outputs import SemanticSegmenterOutput

from dataset_builders.cityscapes.labels import PALETTE
from modeling_ddrnet import (
    DDRNetImageProcessor,
)


def photo_like_images(count: int, height: int = 48, width: int = 80) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def photo(dtype=np.uint8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (32, 48, 3)).astype(dtype)


def processor_pixels(images, **kwargs) -> torch.Tensor:
    return DDRNetImageProcessor(**kwargs)(images, return_tensors="pt")["pixel_values"]


def gray16_png(path: Path, value: int = 128 * 257, size=(128, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size[::-1], value, dtype=np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    return path


def test_tensor_batch_gives_the_pixel_values_of_the_pil_path():
    processor = DDRNetImageProcessor()
    images = photo_like_images(3)
    expected = processor([Image.fromarray(i) for i in images], return_tensors="pt")["pixel_values"]
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)  # (B, 3, H, W) uint8
    actual = processor(batch)["pixel_values"]
    assert actual.dtype == torch.float32 and actual.shape == expected.shape == (3, 3, 48, 80)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    # One image, channels first or last, and a list of tensors are all the same batch.
    first = torch.from_numpy(images[0])
    torch.testing.assert_close(processor(first.permute(2, 0, 1))["pixel_values"], expected[:1], atol=1e-5, rtol=0)
    torch.testing.assert_close(processor(first)["pixel_values"], expected[:1], atol=1e-5, rtol=0)
    listed = processor([torch.from_numpy(i).permute(2, 0, 1) for i in images])["pixel_values"]
    torch.testing.assert_close(listed, expected, atol=1e-5, rtol=0)


def test_tensor_path_stays_on_the_tensors_device_and_resizes_labels_like_pil():
    processor = DDRNetImageProcessor(do_resize=True, size={"height": 24, "width": 40})
    images = torch.from_numpy(np.stack(photo_like_images(2))).permute(0, 3, 1, 2)
    labels = torch.from_numpy(np.random.default_rng(1).integers(0, 19, (2, 48, 80), dtype=np.uint8))
    batch = processor(images.to("meta"), segmentation_maps=labels.to("meta"))
    assert batch["pixel_values"].device.type == "meta" and batch["labels"].device.type == "meta"

    batch = processor(images, segmentation_maps=labels)
    reference = processor(list(images.permute(0, 2, 3, 1).numpy()), segmentation_maps=list(labels.numpy()))
    assert batch["labels"].dtype == torch.int64
    assert np.array_equal(batch["labels"].numpy(), np.stack(reference["labels"]))
    # Bilinear shrinking: torch's antialiased filter and PIL's agree up to rounding of the 8-bit intermediate.
    difference = (batch["pixel_values"] - torch.from_numpy(np.stack(reference["pixel_values"]))).abs()
    assert difference.mean() < 0.02 and difference.max() < 0.2


def test_tensor_path_refuses_shapes_that_are_not_images():
    with pytest.raises(ValueError, match="1 or 3 channels"):
        DDRNetImageProcessor()(torch.zeros(2, 5, 8, 8))


def test_post_process_returns_segmentation_scores_at_the_target_size():
    processor = DDRNetImageProcessor()
    logits = torch.randn(2, 4, 6, 10)
    outputs = SemanticSegmenterOutput(logits=logits)
    results = processor.post_process_semantic_segmentation(
        outputs, target_sizes=[(48, 80), (12, 20)], return_segmentation_scores=True
    )
    assert all(isinstance(r, SemanticSegmentationPostProcessorOutput) for r in results)
    assert results[0].segmentation.shape == (48, 80) and results[0].segmentation_scores.shape == (4, 48, 80)
    assert results[1].segmentation_scores.shape == (4, 12, 20)
    upsampled = F.interpolate(logits[1:], size=(12, 20), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(results[1].segmentation_scores, upsampled)
    assert torch.equal(results[1].segmentation, upsampled.argmax(0))
    plain = processor.post_process_semantic_segmentation(outputs, target_sizes=torch.tensor([[48, 80], [12, 20]]))
    assert torch.equal(plain[0], results[0].segmentation)
    native = processor.post_process_semantic_segmentation(outputs, return_segmentation_scores=True)
    assert torch.equal(native[0].segmentation_scores, logits[0])


def test_image_processor_normalizes_and_post_processes(tiny_model):
    import numpy as np

    processor = DDRNetImageProcessor()
    image = np.full((40, 60, 3), 255, dtype=np.uint8)
    label = np.full((40, 60), 7, dtype=np.uint8)
    batch = processor(image, segmentation_maps=label, return_tensors="pt")
    assert batch["pixel_values"].shape == (1, 3, 40, 60)
    expected = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(batch["pixel_values"][0, :, 0, 0], expected)
    assert batch["labels"].dtype == torch.int64 and batch["labels"].shape == (1, 40, 60)

    tiny_model.eval()
    with torch.no_grad():
        outputs = tiny_model(batch["pixel_values"])
    maps = processor.post_process_semantic_segmentation(outputs, target_sizes=[(80, 120)])
    assert maps[0].shape == (80, 120) and maps[0].max() < 19
    assert processor.post_process_semantic_segmentation(outputs)[0].shape == (5, 8)
    with pytest.raises(ValueError, match="one per image"):
        processor.post_process_semantic_segmentation(outputs, target_sizes=[(1, 1), (2, 2)])


def test_resize_option_resizes_images_and_labels():
    import numpy as np

    processor = DDRNetImageProcessor(do_resize=True, size={"height": 32, "width": 64})
    batch = processor(np.zeros((40, 60, 3), np.uint8), segmentation_maps=np.ones((40, 60), np.uint8))
    assert batch["pixel_values"][0].shape == (3, 32, 64)
    assert batch["labels"][0].shape == (32, 64) and set(np.unique(batch["labels"][0])) == {1}


def test_processor_reads_16_bit_and_unit_float_images_like_8_bit_ones(tmp_path):
    eight = photo()
    expected = processor_pixels(eight)
    sixteen = eight.astype(np.uint16) * 257
    unit = eight.astype(np.float32) / 255
    as_tensor = lambda array: torch.from_numpy(array).permute(2, 0, 1)  # noqa: E731
    for name, images in {
        "uint16 array": sixteen,
        "uint16 tensor": as_tensor(sixteen),
        "float in [0, 1] array": unit,
        "float in [0, 1] tensor": as_tensor(unit),
        "float 0..255 array": eight.astype(np.float32),
        "uint8 tensor": as_tensor(eight),
    }.items():
        torch.testing.assert_close(processor_pixels(images), expected, atol=1e-5, rtol=0, msg=name)
    # A 16-bit grayscale PNG (PIL mode I;16) is gray, not white: its PIL RGB conversion would clip it.
    gray = eight[..., 0]
    expected_gray = processor_pixels(Image.fromarray(gray))
    path = gray16_png(tmp_path / "gray16.png", size=(48, 32))
    Image.fromarray(gray.astype(np.uint16) * 257).save(path)
    for kwargs in ({}, {"do_convert_rgb": True}):
        actual = DDRNetImageProcessor()(Image.open(path), return_tensors="pt", **kwargs)["pixel_values"]
        torch.testing.assert_close(actual, expected_gray, atol=1e-5, rtol=0)


def test_processor_label_maps_in_a_palette_image_are_class_ids():
    labels = np.random.default_rng(0).integers(0, 19, (32, 48), dtype=np.uint8)
    palette_map = Image.frombytes("P", (48, 32), labels.tobytes())
    palette_map.putpalette(PALETTE.flatten().tolist())
    for label_map in (palette_map, Image.fromarray(labels), labels[None]):
        batch = DDRNetImageProcessor()(photo(), segmentation_maps=label_map, return_tensors="pt")
        assert torch.equal(batch["labels"][0], torch.from_numpy(labels).long())


@pytest.mark.parametrize("align_corners", [False, True])
def test_post_process_upsamples_with_the_processors_align_corners(align_corners):
    logits = torch.randn(1, 5, 6, 10)
    outputs = SimpleNamespace(logits=logits)
    processor = DDRNetImageProcessor(align_corners=align_corners)
    [result] = processor.post_process_semantic_segmentation(outputs, [(48, 80)], return_segmentation_scores=True)
    expected = F.interpolate(logits, size=(48, 80), mode="bilinear", align_corners=align_corners)[0]
    torch.testing.assert_close(result["segmentation_scores"], expected)
    other = F.interpolate(logits, size=(48, 80), mode="bilinear", align_corners=not align_corners)[0]
    assert not torch.allclose(result["segmentation_scores"], other)


def test_align_corners_is_saved_with_the_processor(tmp_path):
    DDRNetImageProcessor(align_corners=True).save_pretrained(tmp_path)
    assert DDRNetImageProcessor.from_pretrained(tmp_path).align_corners is True
    assert DDRNetImageProcessor().align_corners is False


def test_float64_arrays_give_float32_pixel_values():
    image = np.random.default_rng(0).random((32, 48, 3))  # an "HxWx3 array" of floats in [0, 1]
    pixel_values = DDRNetImageProcessor()(image, return_tensors="pt")["pixel_values"]
    assert pixel_values.dtype == torch.float32
    expected = DDRNetImageProcessor()((image * 255).round().astype(np.uint8), return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(pixel_values, expected, atol=0.01, rtol=0)


def test_images_of_different_sizes_batch_when_resized_on_both_paths():
    """transformers' image-processor tests call a processor on a list of images of different sizes, as PIL images,
    arrays and tensors: with a size to resize to, they form one batch."""
    processor = DDRNetImageProcessor(do_resize=True, size={"height": 24, "width": 40})
    images = [np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8) for i, (h, w) in enumerate(
        [(30, 50), (48, 20), (24, 40)]
    )]  # fmt: skip
    tensors = [torch.from_numpy(image).permute(2, 0, 1) for image in images]
    from_arrays = processor(images, return_tensors="pt")["pixel_values"]
    from_tensors = processor(tensors, return_tensors="pt")["pixel_values"]
    assert from_arrays.shape == from_tensors.shape == (3, 3, 24, 40)
    torch.testing.assert_close(from_tensors[2], from_arrays[2], atol=1e-5, rtol=0)  # no resizing: the same values


def test_images_of_four_channels_with_their_own_statistics():
    """Any number of channels when the mean and standard deviation are single numbers (or one per channel)."""
    processor = DDRNetImageProcessor(do_resize=True, size={"height": 16, "width": 16})
    images = [np.random.default_rng(i).integers(0, 256, (20 + i, 18, 4), dtype=np.uint8) for i in range(2)]
    arguments = {"return_tensors": "pt", "input_data_format": "channels_last", "image_mean": 0.0, "image_std": 1.0}
    assert processor(images, **arguments)["pixel_values"].shape == (2, 4, 16, 16)
    per_channel = {**arguments, "image_mean": [0.5] * 4, "image_std": [0.25] * 4}
    assert processor(images[0], **per_channel)["pixel_values"].shape == (1, 4, 16, 16)
    with pytest.raises(ValueError, match="Expected images of 3 channels"):
        DDRNetImageProcessor()(images[0], return_tensors="pt", input_data_format="channels_last")
