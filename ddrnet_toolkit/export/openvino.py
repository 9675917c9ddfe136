"""OpenVINO IR export of the inference graph, and its int8 quantization with NNCF post-training quantization.

The IR is the checked ONNX graph (`export_onnx`) read by OpenVINO's ONNX frontend, with its dynamic batch and image
size, saved as `model.xml` (the graph) and `model.bin` (its weights, fp32). The int8 IR goes next to it,
`model.int8.xml` and `model.int8.bin`, with the same input and output: NNCF inserts FakeQuantize operations, whose
ranges it measures on calibration images, and OpenVINO's CPU plugin runs the quantized convolutions with integer
kernels (VNNI where the CPU has it).

Settings (`docs/int8.md` gives the measurements behind each): `NncfSettings`'s defaults. OpenVINO and NNCF are
imported only where they are used (the `openvino` extra).
"""

from __future__ import annotations

from collections.abc import Iterable, Sized
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserInputError
from ..inference.engines import import_openvino
from .int8 import Sample


@dataclass(frozen=True)
class NncfSettings:
    """What `nncf.quantize` is given beyond the model and the calibration images; the defaults are NNCF's own
    for a CNN (measured best here, `docs/int8.md`).

    `preset`: `performance` (symmetric activations and weights) or `mixed` (asymmetric activations);
    `fast_bias_correction`: NNCF's one-pass bias correction (off: the full, layer-by-layer one); `ignored_types`:
    OpenVINO operation types left in float (e.g. `AvgPool`, DAPPM's pooling); `overflow_fix`: 7-bit weights against
    overflow on CPUs without VNNI (`first_layer_only`, `enable`, `disable`).
    """

    preset: str = "performance"
    fast_bias_correction: bool = True
    ignored_types: tuple[str, ...] = ()
    overflow_fix: str = "first_layer_only"


def openvino_files(xml_path: str | Path) -> list[Path]:
    """The files of the IR at `xml_path`: its weights, then the graph (the order in which they are renamed into
    place, so that a graph is never visible before its weights)."""
    xml_path = Path(xml_path)
    return [xml_path.with_suffix(".bin"), xml_path]


def convert_onnx(onnx_path: str | Path):
    """The `openvino.Model` of an exported ONNX graph."""
    return import_openvino().convert_model(str(onnx_path))


def read_openvino(xml_path: str | Path):
    """The `openvino.Model` of an IR file (and its `.bin`)."""
    return import_openvino().Core().read_model(str(xml_path))


def save_openvino(model, xml_path: str | Path) -> Path:
    """Write `model` to `xml_path` and its `.bin` beside it, weights kept in their own precision (no fp16
    compression: the fp32 IR computes what PyTorch computes)."""
    import_openvino().save_model(model, str(xml_path), compress_to_fp16=False)
    return Path(xml_path)


class CalibrationDataset:
    """NNCF's calibration input: the `(1, 3, H, W)` pixels of every sample, as often as NNCF passes over them
    (statistics, then bias correction)."""

    def __init__(self, samples: Iterable[Sample] | Sized):
        self.samples = samples

    def __iter__(self):
        return (pixel_values.numpy() for pixel_values, _ in self.samples)

    def __len__(self) -> int:
        return len(self.samples)


def quantize_openvino(model, calibration: Iterable[Sample], settings: NncfSettings | None = None):
    """The int8 `openvino.Model` of the fp32 `model`, its activation ranges measured on every `calibration` image
    (an iterable that can be passed over more than once, with a length: e.g. `CalibrationImages`)."""
    try:
        import nncf
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    except ImportError as error:
        raise UserInputError(f"int8 OpenVINO needs NNCF ({error}): pip install 'ddrnet-hf[openvino]'") from error
    settings = settings or NncfSettings()
    dataset = CalibrationDataset(calibration)
    ignored = nncf.IgnoredScope(types=list(settings.ignored_types), validate=False) if settings.ignored_types else None
    return nncf.quantize(
        model,
        nncf.Dataset(dataset),
        preset=nncf.QuantizationPreset(settings.preset),
        subset_size=len(dataset),
        fast_bias_correction=settings.fast_bias_correction,
        ignored_scope=ignored,
        advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix(settings.overflow_fix)),
    )
