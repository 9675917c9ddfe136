from __future__ import annotations

import torch
import torch.nn.functional as F

from ddrnet_toolkit.inference import predict_probabilities, sliding_window_logits


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
