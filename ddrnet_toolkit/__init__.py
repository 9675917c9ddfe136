"""Everything that trains, evaluates and ships a DDRNet, on top of `modeling_ddrnet` (the model alone), split by
concern:

- `data`: decoding, augmentation, normalization, loaders and the dataset a run selects;
- `training`: the training loop's pieces, checkpoints, recipes and the average of the weights;
- `evaluation`: distributed scoring and the offline `mean_iou` evaluate module;
- `inference`: test-time augmentation, image and video I/O, pictures and prediction runs;
- `export`: ONNX, int8, and the export checked against PyTorch;
- `hub`: publishing a model folder with its card and demo app;
- `benchmarking`: speed measurements;
- `commands`: the command-line programs (`ddrnet-train`, `ddrnet-eval`, ...);

and the core modules `errors`, `files`, `model_folder` and `devices` that all of them use.
"""

from pathlib import Path

# `evaluate.load(MEAN_IOU_METRIC_PATH)` loads the offline Mean IoU module from the installed package.
MEAN_IOU_METRIC_PATH = str(Path(__file__).parent / "evaluation" / "mean_iou")

__all__ = ["MEAN_IOU_METRIC_PATH"]
