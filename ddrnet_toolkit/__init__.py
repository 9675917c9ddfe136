"""Everything that trains, evaluates and ships a DDRNet: data pipeline, training loop pieces and checkpoints,
distributed evaluation and test-time augmentation, ONNX export, hub folders with model cards, benchmarks, and the
scripts' shared entry point. It builds on `modeling_ddrnet` (the model alone), never the reverse.
"""

from pathlib import Path

# `evaluate.load(MEAN_IOU_METRIC_PATH)` loads the offline Mean IoU module from the installed package.
MEAN_IOU_METRIC_PATH = str(Path(__file__).parent / "mean_iou")

__all__ = ["MEAN_IOU_METRIC_PATH"]
