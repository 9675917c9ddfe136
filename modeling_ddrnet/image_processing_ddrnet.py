"""Image processor for DDRNet: optional resize, rescale to [0, 1], ImageNet normalization."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    ChannelDimension,
    ImageInput,
    PILImageResampling,
)
from transformers.utils import TensorType


class DDRNetImageProcessor(PilBackend):
    r"""
    Prepares images (and optionally segmentation maps) for DDRNet.

    DDRNet is evaluated at full resolution on Cityscapes (1024x2048), so resizing is off by default. Images are
    rescaled to [0, 1] and normalized with the ImageNet mean and standard deviation, as the original training
    code did. Segmentation maps are resized with nearest-neighbour interpolation and returned as int64 `labels`.
    """

    resample = PILImageResampling.BILINEAR
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    size = {"height": 1024, "width": 2048}
    default_to_square = True
    do_resize = False
    do_center_crop = None
    crop_size = None
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True

    def preprocess(self, images: ImageInput, segmentation_maps: ImageInput | None = None, **kwargs) -> BatchFeature:
        r"""
        segmentation_maps (`ImageInput`, *optional*):
            Label maps of shape `(height, width)` to return as `labels`.
        """
        return super().preprocess(images, segmentation_maps, **kwargs)

    def _preprocess_image_like_inputs(
        self,
        images: ImageInput,
        segmentation_maps: ImageInput | None,
        do_convert_rgb: bool,
        input_data_format: ChannelDimension,
        return_tensors: str | TensorType | None,
        **kwargs,
    ) -> BatchFeature:
        images = self._prepare_image_like_inputs(
            images=images, do_convert_rgb=do_convert_rgb, input_data_format=input_data_format
        )
        data = {"pixel_values": self._preprocess(images, **kwargs)}
        if segmentation_maps is not None:
            maps = self._prepare_image_like_inputs(
                images=segmentation_maps,
                expected_ndims=2,
                do_convert_rgb=False,
                input_data_format=ChannelDimension.FIRST,
            )
            map_kwargs = {**kwargs, "do_normalize": False, "do_rescale": False, "resample": PILImageResampling.NEAREST}
            data["labels"] = [m.squeeze(0).astype(np.int64) for m in self._preprocess(maps, **map_kwargs)]
        return BatchFeature(data=data, tensor_type=return_tensors)

    def _preprocess(
        self,
        images: list[np.ndarray],
        resample: PILImageResampling | None,
        do_resize: bool,
        do_rescale: bool,
        do_normalize: bool,
        size,
        rescale_factor: float,
        image_mean: float | list[float],
        image_std: float | list[float],
        **kwargs,
    ) -> list[np.ndarray]:
        processed = []
        for image in images:
            if do_resize:
                image = self.resize(image, size, resample)
            if do_rescale:
                image = self.rescale(image, rescale_factor)
            if do_normalize:
                image = self.normalize(image, image_mean, image_std)
            processed.append(image)
        return processed

    def post_process_semantic_segmentation(
        self, outputs, target_sizes: list[tuple[int, int]] | torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """
        Turn model outputs into one `(height, width)` map of class ids per image.

        Args:
            outputs: the output of `DDRNetForSemanticSegmentation` (`logits` of shape `(batch, num_labels, h, w)`).
            target_sizes: one `(height, width)` per image; logits are bilinearly upsampled to it before the
                argmax. Without it, the maps stay at the logits' resolution (1/8 of the input).
        """
        logits = outputs.logits
        if target_sizes is None:
            return list(logits.argmax(dim=1))
        if len(target_sizes) != len(logits):
            raise ValueError(
                f"Got {len(target_sizes)} target sizes for a batch of {len(logits)} images; pass one per image."
            )
        if isinstance(target_sizes, torch.Tensor):
            target_sizes = target_sizes.tolist()
        return [
            F.interpolate(image_logits[None], size=tuple(size), mode="bilinear", align_corners=False)[0].argmax(dim=0)
            for image_logits, size in zip(logits, target_sizes, strict=True)
        ]


__all__ = ["DDRNetImageProcessor"]
