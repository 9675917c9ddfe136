from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ddrnet_toolkit.errors import UserInputError
from ddrnet_toolkit.inference import predict_probabilities, sliding_window_logits
from ddrnet_toolkit.inference.video import VideoReader

av = pytest.importorskip("av")


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
