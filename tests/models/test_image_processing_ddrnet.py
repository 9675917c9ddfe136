"""DDRNetImageProcessor: the torch-tensor path against the PIL path, and post-processing with scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.image_processing_outputs import SemanticSegmentationPostProcessorOutput
from transformers.modeling_outputs import SemanticSegmenterOutput

from modeling_ddrnet import DDRNetImageProcessor


def photo_like_images(count: int, height: int = 48, width: int = 80) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


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
