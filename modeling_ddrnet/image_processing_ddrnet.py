"""Image processor for DDRNet: optional resize, rescale to [0, 1], ImageNet normalization.

PIL images and numpy arrays go through transformers' PIL backend on the CPU. Torch tensors (one image or a batch,
on any device) are processed with torch ops where they are, so GPU inference is not held back by the CPU; both
paths give the same pixel values.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_outputs import SemanticSegmentationPostProcessorOutput
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    ChannelDimension,
    ImageInput,
    PILImageResampling,
)
from transformers.utils import TensorType

# torch's equivalents of the PIL filters (`nearest-exact` picks the pixel PIL's nearest filter picks).
TORCH_INTERPOLATION = {
    PILImageResampling.NEAREST: "nearest-exact",
    PILImageResampling.BILINEAR: "bilinear",
    PILImageResampling.BICUBIC: "bicubic",
}


def is_tensor_input(images) -> bool:
    """A torch tensor, or a list of them."""
    return isinstance(images, torch.Tensor) or (
        isinstance(images, list | tuple) and len(images) > 0 and all(isinstance(i, torch.Tensor) for i in images)
    )


def stack_tensors(images, image_ndim: int) -> torch.Tensor:
    """One tensor or a list of equally sized ones -> a batch with `image_ndim + 1` dimensions."""
    if isinstance(images, torch.Tensor):
        return images[None] if images.ndim == image_ndim else images
    return torch.stack(list(images))


def image_batch(images) -> torch.Tensor:
    """`(C, H, W)`, `(B, C, H, W)` or channels-last tensors (or a list) -> `(B, 3, H, W)` float32 on their device."""
    batch = stack_tensors(images, 3)
    if batch.ndim != 4:
        raise ValueError(f"Expected image tensors of shape (C, H, W) or (B, C, H, W), got {tuple(batch.shape)}")
    if batch.shape[1] not in (1, 3) and batch.shape[-1] in (1, 3):
        batch = batch.permute(0, 3, 1, 2)
    if batch.shape[1] not in (1, 3):
        raise ValueError(f"Expected 1 or 3 channels, got image tensors of shape {tuple(batch.shape)}")
    return batch.expand(-1, 3, -1, -1).float()


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
        if is_tensor_input(images):
            return self._preprocess_tensors(images, segmentation_maps, **kwargs)
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

    def _preprocess_tensors(
        self,
        images: torch.Tensor | list[torch.Tensor],
        segmentation_maps: torch.Tensor | list[torch.Tensor] | None,
        resample: PILImageResampling | None,
        do_resize: bool,
        do_rescale: bool,
        do_normalize: bool,
        size,
        rescale_factor: float,
        image_mean: float | list[float],
        image_std: float | list[float],
        **kwargs,
    ) -> BatchFeature:
        """The same steps as the PIL path, with torch ops on the tensors' device; returns batched tensors there."""
        pixel_values = image_batch(images)
        if do_resize:
            target = (size.height, size.width)
            mode = TORCH_INTERPOLATION.get(resample, "bilinear")
            antialias = mode != "nearest-exact"  # PIL's filters widen their support when they shrink
            pixel_values = F.interpolate(pixel_values, size=target, mode=mode, antialias=antialias)
        if do_rescale:
            pixel_values = pixel_values * rescale_factor
        if do_normalize:
            mean = torch.as_tensor(image_mean, dtype=torch.float32, device=pixel_values.device).view(1, -1, 1, 1)
            std = torch.as_tensor(image_std, dtype=torch.float32, device=pixel_values.device).view(1, -1, 1, 1)
            pixel_values = (pixel_values - mean) / std
        data = {"pixel_values": pixel_values}
        if segmentation_maps is not None:
            labels = stack_tensors(segmentation_maps, 2)
            if do_resize:
                labels = F.interpolate(labels[:, None].float(), size=target, mode="nearest-exact")[:, 0]
            data["labels"] = labels.long()
        return BatchFeature(data=data)

    def post_process_semantic_segmentation(
        self,
        outputs,
        target_sizes: list[tuple[int, int]] | torch.Tensor | None = None,
        return_segmentation_scores: bool = False,
    ) -> list[torch.Tensor] | list[SemanticSegmentationPostProcessorOutput]:
        """
        Turn model outputs into one map of class ids per image.

        Args:
            outputs: the output of `DDRNetForSemanticSegmentation` (`logits` of shape `(batch, num_labels, h, w)`).
            target_sizes: one `(height, width)` per image; logits are bilinearly upsampled to it before the
                argmax. Without it, the maps stay at the logits' resolution (1/8 of the input).
            return_segmentation_scores: also return each image's class scores at the same size.
        Returns:
            Per image, a `(height, width)` tensor of class ids; with `return_segmentation_scores`, a
            `SemanticSegmentationPostProcessorOutput` with `segmentation` (that map) and `segmentation_scores`
            (`(num_labels, height, width)` logits).
        """
        logits = outputs.logits
        if target_sizes is not None and len(target_sizes) != len(logits):
            raise ValueError(
                f"Got {len(target_sizes)} target sizes for a batch of {len(logits)} images; pass one per image."
            )
        if isinstance(target_sizes, torch.Tensor):
            target_sizes = target_sizes.tolist()
        results = []
        for index, image_logits in enumerate(logits):
            if target_sizes is not None:
                size = tuple(int(v) for v in target_sizes[index])
                image_logits = F.interpolate(image_logits[None], size=size, mode="bilinear", align_corners=False)[0]
            segmentation = image_logits.argmax(dim=0)
            if return_segmentation_scores:
                results.append(
                    SemanticSegmentationPostProcessorOutput(
                        data={"segmentation": segmentation, "segmentation_scores": image_logits}
                    )
                )
            else:
                results.append(segmentation)
        return results


__all__ = ["DDRNetImageProcessor"]
