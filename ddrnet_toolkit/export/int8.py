"""int8 post-training static quantization of the exported inference graph (onnxruntime), and how far it moves the
predictions from fp32.

Settings (`docs/int8.md` gives the measurements behind each): QDQ format, so that onnxruntime's CPU provider fuses
QuantizeLinear/DequantizeLinear around a convolution into an integer convolution; uint8 activations with a zero
point and int8 symmetric weights per output channel (the U8S8 kernels that use VNNI); no `reduce_range`; MinMax
calibration at the images' own size; AveragePool and BatchNormalization left in float (a quantized AveragePool
takes its input's scale, too coarse for DAPPM's pooled features).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch

from modeling_ddrnet import DDRNetConfig

from ..data.loaders import EvalDataset
from ..data.normalization import normalize
from ..errors import UserInputError
from ..evaluation.mean_iou.mean_iou import metrics_from_confusion_matrix
from ..evaluation.scoring import confusion_matrix
from ..inference.segmentation import predict_probabilities

# Every float operator of the exported graph but AveragePool and BatchNormalization (see the module docstring).
QUANTIZED_OPERATORS = ["Conv", "Relu", "Add", "Resize", "Concat", "GlobalAveragePool"]

# `(1, 3, H, W)` normalized pixels and `(1, H, W)` labels (None for an unlabelled split).
Sample = tuple[torch.Tensor, torch.Tensor | None]


def int8_path(fp32_path: str | Path) -> Path:
    """Where the int8 graph of `model.onnx` (or `model.xml`) goes: `model.int8.onnx` (`model.int8.xml`), next to
    it."""
    fp32_path = Path(fp32_path)
    suffix = ".xml" if fp32_path.suffix == ".xml" else ".onnx"
    return fp32_path.with_name(fp32_path.name.removesuffix(suffix) + ".int8" + suffix)


def spread_indices(length: int, count: int) -> list[int]:
    """`count` indices spread evenly over `range(length)` (all of them when `count >= length`), so that a split
    sorted by city calibrates on every city rather than on the first."""
    if count >= length:
        return list(range(length))
    return np.linspace(0, length - 1, count).round().astype(int).tolist()


def split_samples(split: datasets.Dataset, indices: Iterable[int]) -> Iterator[Sample]:
    """The split's images at `indices`, one at a time, normalized as the model is fed in evaluation."""
    images = EvalDataset(split)
    for index in indices:
        sample = images[index]
        pixel_values = torch.from_numpy(normalize(sample["pixel_values"].numpy())).unsqueeze(0)
        labels = sample.get("labels")
        yield pixel_values, None if labels is None else labels.unsqueeze(0)


@dataclass(frozen=True)
class CalibrationImages:
    """`split_samples` of the split's images at `indices`, as often as they are iterated over."""

    split: datasets.Dataset
    indices: Sequence[int]

    def __iter__(self) -> Iterator[Sample]:
        return split_samples(self.split, self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class CalibrationReader:
    """onnxruntime's calibration input (any object with `get_next`): `{"pixel_values": (1, 3, H, W)}` per sample,
    then None."""

    def __init__(self, samples: Iterable[Sample]):
        self.samples = iter(samples)

    def get_next(self) -> dict[str, np.ndarray] | None:
        sample = next(self.samples, None)
        return None if sample is None else {"pixel_values": sample[0].numpy()}


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, calibration: Iterable[Sample]) -> Path:
    """Write the int8 QDQ graph of the fp32 graph at `fp32_path` to `int8_path`, its activation ranges measured on
    the `calibration` images (same interface: `pixel_values` (batch, 3, H, W) -> `logits` (batch, labels, h, w))."""
    # Imported here: onnxruntime is the `onnx` extra, and the scripts' --help must work without it.
    try:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as error:
        raise UserInputError(f"--int8 needs onnxruntime ({error}): pip install 'ddrnet-hf[onnx]'") from error
    with tempfile.TemporaryDirectory() as folder:
        # Shape inference and constant folding first, as onnxruntime advises: the quantizer then knows every
        # tensor's type and sees no shape arithmetic. Its symbolic shape inference is skipped: it took 28 s of
        # sympy on the dynamic Resize sizes (even for a tiny model) and made no difference to the int8 graph.
        prepared = Path(folder) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            prepared,
            int8_path,
            CalibrationReader(calibration),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=QUANTIZED_OPERATORS,
            per_channel=True,
            reduce_range=False,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    return Path(int8_path)


@dataclass
class Agreement:
    """int8 predictions against fp32 ones (labels after upsampling to the image, as evaluation predicts)."""

    num_images: int
    disagreement: float  # fraction of the pixels whose predicted label differs
    mean_iou_fp32: float | None  # against the split's labels; None for an unlabelled split
    mean_iou_int8: float | None


def compare_predictions(
    fp32: Callable[[torch.Tensor], torch.Tensor],
    int8: Callable[[torch.Tensor], torch.Tensor],
    samples: Iterable[Sample],
    config: DDRNetConfig,
) -> Agreement:
    """Run both models (`(1, 3, H, W)` pixels -> logits: engines of `inference.engines`) on every sample."""
    num_images = changed = pixels = 0
    confusions = {}
    for pixel_values, labels in samples:
        predictions = {
            name: predict_probabilities(model, pixel_values, align_corners=config.align_corners).argmax(dim=1)
            for name, model in (("fp32", fp32), ("int8", int8))
        }
        num_images += 1
        changed += int((predictions["fp32"] != predictions["int8"]).sum())
        pixels += predictions["fp32"].numel()
        if labels is not None:
            for name, predicted in predictions.items():
                counts = confusion_matrix(predicted, labels, config.num_labels, config.semantic_loss_ignore_index)
                confusions[name] = confusions.get(name, 0) + counts
    mean_iou = {name: float(metrics_from_confusion_matrix(c.numpy())["mean_iou"]) for name, c in confusions.items()}
    return Agreement(num_images, changed / pixels, mean_iou.get("fp32"), mean_iou.get("int8"))
