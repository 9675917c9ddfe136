"""Running a trained model on images and videos: test-time augmentation, reading and writing images and videos,
colour pictures, and prediction runs over many inputs."""

from .prediction import OutputWriter, PredictionSummary, predict_inputs
from .segmentation import InferenceOptions, predict_classes, predict_probabilities, sliding_window_logits

__all__ = [
    "InferenceOptions",
    "OutputWriter",
    "PredictionSummary",
    "predict_classes",
    "predict_inputs",
    "predict_probabilities",
    "sliding_window_logits",
]
