"""The training pipeline before libspng and crop-first (PIL decode, PIL resize of the whole image, float32 pixels):
the reference that the current pipeline's draws, labels and pixels are checked against."""

from __future__ import annotations

import numpy as np
from PIL import Image

from dataset_builders.label_space import IGNORE_INDEX
from ddrnet_toolkit.data.augmentation import TrainAugmentation
from ddrnet_toolkit.data.normalization import normalize


class PreviousTrainAugmentation(TrainAugmentation):
    """PIL resize of the whole image, float32 pixels; the same draws in the same order as `TrainAugmentation`."""

    def __call__(self, image: Image.Image, label: Image.Image, rng: np.random.Generator):
        """Returns `(3, crop_h, crop_w)` float32 normalized pixels (padding 0) and `(crop_h, crop_w)` uint8 labels."""
        width, height = image.size
        scale = float(rng.choice(self.scales)) * self.base_size / max(width, height)
        size = (max(1, int(width * scale + 0.5)), max(1, int(height * scale + 0.5)))
        image = np.asarray(image.convert("RGB").resize(size, Image.BILINEAR))
        label = np.asarray(label.resize(size, Image.NEAREST))
        crop_h, crop_w = self.crop_size
        top = int(rng.integers(0, max(size[1] - crop_h, 0) + 1))
        left = int(rng.integers(0, max(size[0] - crop_w, 0) + 1))
        image = image[top : top + crop_h, left : left + crop_w]
        label = label[top : top + crop_h, left : left + crop_w]
        if self.flip and rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        pixels = np.zeros((3, crop_h, crop_w), dtype=np.float32)
        labels = np.full((crop_h, crop_w), IGNORE_INDEX, dtype=np.uint8)
        pixels[:, : image.shape[0], : image.shape[1]] = normalize(image)
        labels[: label.shape[0], : label.shape[1]] = label
        return pixels, labels
