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


# --------------------------------------------------------------------------------------------------------------
# Engines: every engine computes the PyTorch model's logits (fp32 within the export's tolerance, int8 within the
# label-disagreement bound its export was held to).

ENGINE_SHAPES = [(1, 3, 64, 128), (2, 3, 96, 160)]


def test_pytorch_engine_is_the_model(tiny_model_dir):
    from ddrnet_toolkit.inference.engines import PyTorchEngine, load_engine
    from ddrnet_toolkit.model_folder import load_trained_model

    engine = load_engine(tiny_model_dir)
    model = load_trained_model(tiny_model_dir)
    assert isinstance(engine, PyTorchEngine) and engine.name == "pytorch"
    pixel_values = torch.randn(ENGINE_SHAPES[1])
    with torch.no_grad():
        torch.testing.assert_close(engine(pixel_values), model(pixel_values).logits, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("export", "engine_name"),
    [("onnx", "onnxruntime"), ("openvino", "openvino"), ("onnx", "openvino")],
    ids=["onnxruntime", "openvino", "openvino-reads-onnx"],
)
def test_fp32_engines_compute_the_pytorch_logits(export, engine_name, exported_tiny_models, tiny_model_dir):
    from conftest import FP32_TOLERANCE

    from ddrnet_toolkit.inference.engines import load_engine
    from ddrnet_toolkit.model_folder import load_trained_model

    engine = load_engine(tiny_model_dir, exported_tiny_models[export], engine=engine_name if export == "onnx" else None)
    assert engine.name == engine_name and engine.config.num_labels == 19
    model = load_trained_model(tiny_model_dir)
    torch.manual_seed(1)
    for shape in ENGINE_SHAPES:  # other sizes and batches than the export's check: the axes are dynamic
        pixel_values = torch.randn(shape)
        with torch.no_grad():
            expected = model(pixel_values).logits
        actual = engine(pixel_values)
        assert actual.shape == expected.shape and actual.dtype == torch.float32
        torch.testing.assert_close(actual, expected, rtol=0, atol=FP32_TOLERANCE * expected.abs().max().item())


@pytest.mark.parametrize("export", ["onnx-int8", "openvino-int8"])
def test_int8_engines_keep_the_labels_within_the_guard(export, exported_tiny_models, tiny_model_dir, synthetic_root):
    from conftest import TINY_INT8_BOUND

    from ddrnet_toolkit.inference.engines import load_engine
    from ddrnet_toolkit.inference.images import read_rgb_image
    from ddrnet_toolkit.inference.segmentation import predict_classes

    int8, fp32 = load_engine(tiny_model_dir, exported_tiny_models[export]), load_engine(tiny_model_dir)
    images = np.stack([read_rgb_image(p) for p in sorted((synthetic_root / "leftImg8bit" / "val").glob("*/*.png"))])
    predicted, expected = predict_classes(int8, images), predict_classes(fp32, images)
    assert predicted.shape == expected.shape == images.shape[:3] and predicted.dtype == np.uint8
    assert (predicted != expected).mean() <= TINY_INT8_BOUND


def test_engines_run_on_cpu_whatever_the_input_device(exported_tiny_models, tiny_model_dir):
    """Test-time augmentation and scoring take any engine: the logits come back where the pixels are."""
    from ddrnet_toolkit.inference.engines import load_engine

    engine = load_engine(tiny_model_dir, exported_tiny_models["openvino"])
    pixel_values = torch.randn(1, 3, 64, 128)
    probabilities = predict_probabilities(engine, pixel_values, scales=(0.5, 1.0), flip=True)
    expected = predict_probabilities(load_engine(tiny_model_dir), pixel_values, scales=(0.5, 1.0), flip=True)
    assert probabilities.device == pixel_values.device
    torch.testing.assert_close(probabilities, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    ("file_name", "engine_name", "message"),
    [
        ("model.bin", None, r"^exported model .*model\.bin: not an \.onnx file or an OpenVINO \.xml file"),
        ("model.xml", "onnxruntime", r"^exported model .*model\.xml: onnxruntime cannot run a \.xml file$"),
        ("missing.onnx", None, r"^exported model .*missing\.onnx: no such file$"),
        ("damaged.onnx", None, r"^exported model .*damaged\.onnx: onnxruntime cannot load it"),
        ("damaged.xml", None, r"^exported model .*damaged\.xml: openvino cannot load it"),
    ],
)
def test_bad_exported_models_are_named(file_name, engine_name, message, tiny_model_dir, tmp_path):
    from ddrnet_toolkit.inference.engines import load_engine

    for name in ("model.bin", "model.xml", "damaged.onnx", "damaged.xml"):
        (tmp_path / name).write_text("not a model\n")
    with pytest.raises(UserInputError, match=message):
        load_engine(tiny_model_dir, tmp_path / file_name, engine=engine_name)


def test_export_of_another_model_is_refused(exported_tiny_models, tmp_path):
    from conftest import tiny_config

    from ddrnet_toolkit.inference.engines import load_engine
    from modeling_ddrnet import DDRNetForSemanticSegmentation

    torch.manual_seed(0)
    DDRNetForSemanticSegmentation(tiny_config(num_labels=5)).save_pretrained(tmp_path / "five")
    with pytest.raises(UserInputError, match=r"predicts 19 classes, the model in .*five 5: export this model again$"):
        load_engine(tmp_path / "five", exported_tiny_models["openvino-int8"])
