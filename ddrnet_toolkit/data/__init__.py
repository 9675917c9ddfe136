"""The data pipeline: the dataset a run reads, uint8 decoding and augmentation in the workers, normalization on the
device."""

from .augmentation import TrainAugmentation
from .class_weights import count_label_pixels, weights_from_counts
from .loaders import EvalDataset, PadToLargest, TrainDataset, train_dataloader
from .normalization import normalize, normalize_on_device
from .selection import SelectedDataset, load_dataset

__all__ = [
    "EvalDataset",
    "PadToLargest",
    "SelectedDataset",
    "TrainAugmentation",
    "TrainDataset",
    "count_label_pixels",
    "load_dataset",
    "normalize",
    "normalize_on_device",
    "train_dataloader",
    "weights_from_counts",
]
