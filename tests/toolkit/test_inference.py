from __future__ import annotations

from types import SimpleNamespace

import datasets
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from PIL import Image
from torch import nn

from ddrnet_toolkit.errors import UserInputError
from ddrnet_toolkit.evaluation.scoring import evaluate_split
from ddrnet_toolkit.inference import predict_probabilities, sliding_window_logits
from ddrnet_toolkit.inference.video import VideoReader


def test_single_scale_is_the_upsampled_softmax(tiny_model):
    tiny_model.eval()
    pixel_values = torch.randn(2, 3, 64, 96)
    probabilities = predict_probabilities(tiny_model, pixel_values)
    with torch.no_grad():
        logits = F.interpolate(tiny_model(pixel_values).logits, size=(64, 96), mode="bilinear", align_corners=False)
    torch.testing.assert_close(probabilities, logits.softmax(1))


def test_flip_and_scales_average_probabilities(tiny_model):
    tiny_model.eval()
    pixel_values = torch.randn(1, 3, 64, 96)
    mirrored = predict_probabilities(tiny_model, pixel_values.flip(-1)).flip(-1)
    plain = predict_probabilities(tiny_model, pixel_values)
    torch.testing.assert_close(predict_probabilities(tiny_model, pixel_values, flip=True), (plain + mirrored) / 2)
    multi = predict_probabilities(tiny_model, pixel_values, scales=(0.5, 1.0, 1.5))
    assert multi.shape == (1, 19, 64, 96)
    torch.testing.assert_close(multi.sum(1), torch.ones(1, 64, 96))


def test_sliding_window_covers_every_pixel(tiny_model):
    tiny_model.eval()
    pixel_values = torch.randn(1, 3, 100, 150)
    with torch.no_grad():
        whole = sliding_window_logits(tiny_model, pixel_values, window=(100, 150), stride=(100, 150))
        expected = F.interpolate(tiny_model(pixel_values).logits, size=(100, 150), mode="bilinear")
        torch.testing.assert_close(whole, expected)
        windows = sliding_window_logits(tiny_model, pixel_values, window=(64, 64), stride=(48, 48))
    assert windows.shape == (1, 19, 100, 150) and torch.isfinite(windows).all()
    # A window larger than the image pads instead of failing.
    padded = predict_probabilities(tiny_model, pixel_values, window=(128, 256), stride=(128, 256))
    assert padded.shape == (1, 19, 100, 150)


def test_audio_only_file_has_no_video_stream(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(UserInputError, match=r"voice\.mp4: cannot be decoded as a video \(it holds no video stream\)$"):
        VideoReader(path)


@pytest.mark.parametrize("align_corners", [False, True])
def test_sliding_window_follows_align_corners(tiny_model, align_corners):
    tiny_model.eval()
    pixel_values = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        whole = sliding_window_logits(tiny_model, pixel_values, (64, 96), (64, 96), align_corners=align_corners)
        logits = tiny_model(pixel_values).logits
    expected = F.interpolate(logits, size=(64, 96), mode="bilinear", align_corners=align_corners)
    torch.testing.assert_close(whole, expected)
    other = F.interpolate(logits, size=(64, 96), mode="bilinear", align_corners=not align_corners)
    assert not torch.allclose(whole, other)


class LeftOrRight(nn.Module):
    """A stand-in network with DDRNet's output size (ceil(H/8) x ceil(W/8) logits): class 0 where the input's first
    channel is bright, class 1 where its second is, averaged over each 8x8 cell. Its upsampled argmax reproduces a
    boundary on a multiple of 8 exactly, so a shift or a stretch of the label map shows."""

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(num_labels=2, semantic_loss_ignore_index=255, align_corners=False)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(pixel_values[:, :2], kernel_size=8, stride=8, ceil_mode=True)


def left_or_right(height: int = 360, width: int = 480, boundary: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """`(1, 3, H, W)` pixels whose class (0 left of `boundary`, 1 from it on) the stand-in network predicts."""
    classes = (torch.arange(width) >= boundary).long().expand(height, width)
    pixel_values = torch.zeros(1, 3, height, width)
    pixel_values[0, 0] = (classes == 0).float()
    pixel_values[0, 1] = (classes == 1).float()
    return pixel_values, classes


@pytest.mark.parametrize(
    "options",
    [{}, {"flip": True}, {"window": (256, 256), "stride": (192, 192)}],
    ids=["whole", "flip", "sliding-window"],
)
def test_label_maps_align_pixel_for_pixel_at_a_size_that_is_not_a_multiple_of_16(options):
    pixel_values, classes = left_or_right()
    predictions = predict_probabilities(LeftOrRight(), pixel_values, **options).argmax(dim=1)[0]
    assert predictions.shape == (360, 480)
    assert torch.equal(predictions, classes)


def test_evaluation_scores_labels_at_the_images_own_size_that_is_not_a_multiple_of_16(tmp_path):
    pixel_values, classes = left_or_right()
    image = ((pixel_values[0].permute(1, 2, 0) * 255).byte()).numpy()
    split = datasets.Dataset.from_dict(
        {"image": [Image.fromarray(image)], "label": [Image.fromarray(classes.byte().numpy())]},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.Image()}),
    )
    # The stand-in sees normalized pixels: ImageNet normalization keeps channel 0 brighter left, channel 1 right.
    result = evaluate_split(LeftOrRight(), split, Accelerator(cpu=True), num_workers=0)
    assert result.metrics["mean_iou"] == 1.0
