"""Export a DDRNet model to an OpenVINO IR (fp32, dynamic batch and image size) and check it with OpenVINO.

The IR is the ONNX export's inference graph (BatchNorm folded, no auxiliary head; logits at 1/8 resolution) read
by OpenVINO: --output model.xml (the graph) and model.bin (its weights) beside it. Both are written under
temporary names and renamed into place only when OpenVINO's logits agree with PyTorch's, so a failed export leaves
existing files untouched.

With --int8, the IR is also quantized with NNCF post-training quantization (NNCF's defaults for a CNN, which
docs/int8.md compares with the other settings tried: the performance preset, fast bias correction, 7-bit weights in
the first convolution; activation ranges measured on --num_calibration_images images of --calibration_split) and
written next to it, model.xml -> model.int8.xml and
model.int8.bin, with the same input and output. Before anything is written, int8 and fp32 predictions are compared
on the calibration images; beyond --max_label_disagreement (a fraction of their pixels) nothing is written.
predict.py and eval.py run either file with --exported_model; scripts/benchmark.py --int8_model_name_or_path
measures every engine's speed and mean IoU.

Needs the openvino extra: pip install 'ddrnet-hf[openvino]'.

Examples:
    python scripts/export_openvino.py --model_name_or_path outputs/ddrnet-23-slim/best_model --output ddrnet.xml
    python scripts/export_openvino.py --model_name_or_path M --output ddrnet.xml --int8 \\
        --calibration_data_dir /data/cityscapes --calibration_split train --num_calibration_images 32
"""

from __future__ import annotations

import argparse

from .export_onnx import export, parse_export_args
from .runner import entry_point


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parse_export_args(argv, "openvino", __doc__)


def main(argv: list[str] | None = None) -> int:
    return export(parse_args(argv), "openvino")


cli = entry_point(main)


if __name__ == "__main__":
    cli()
