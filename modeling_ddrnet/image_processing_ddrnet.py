"""Image processor for DDRNet: optional resize, rescale to [0, 1], ImageNet normalization.

PIL images and numpy arrays go through transformers' PIL backend on the CPU. Torch tensors (one image or a batch,
on any device) are processed with torch ops where they are, so GPU inference is not held back by the CPU; both
paths give the same pixel values, and both read pixel values by their type (see `DDRNetImageProcessor`).
"""

from __future__ import annotations

import numpy as np
import PIL.Image
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
from transformers.processing_utils import ImagesKwargs
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


def expected_channels(image_mean, do_normalize: bool | None) -> int | None:
    """The channels images must have: one per value of a per-channel `image_mean` (a grayscale image is repeated
    to them), any number when the mean is one number or no normalization is done."""
    if do_normalize is False or image_mean is None or np.ndim(image_mean) == 0:
        return None
    return len(image_mean)


def check_one_size(sizes: list) -> None:
    """Images batched into one tensor must share a size; otherwise a ValueError that says what to do."""
    distinct = sorted({tuple(int(v) for v in size) for size in sizes})
    if len(distinct) > 1:
        shown = ", ".join(f"{h}x{w}" for h, w in distinct[:4])
        raise ValueError(
            f"Images of different sizes ({shown}) cannot be stacked into one tensor: pass do_resize=True (with a "
            "size), or one image at a time"
        )


def image_batch(images, channels: int | None = 3) -> torch.Tensor:
    """`(C, H, W)`, `(B, C, H, W)` or channels-last tensors (or a list) -> `(B, C, H, W)` on their device, in their
    dtype (checked by `check_pixel_dtype`); grayscale is repeated to `channels` (see `expected_channels`)."""
    batch = stack_tensors(images, 3)
    if batch.ndim != 4:
        raise ValueError(f"Expected image tensors of shape (C, H, W) or (B, C, H, W), got {tuple(batch.shape)}")
    wanted = (1, channels) if channels is not None else None
    if wanted is not None and batch.shape[1] not in wanted and batch.shape[-1] in wanted:
        batch = batch.permute(0, 3, 1, 2)
    if wanted is not None and batch.shape[1] not in wanted:
        raise ValueError(
            f"Expected 1 or {channels} channels (one per value of image_mean), got image tensors of shape "
            f"{tuple(batch.shape)}"
        )
    check_pixel_dtype(batch.dtype)
    return batch.expand(-1, channels, -1, -1) if channels is not None and batch.shape[1] == 1 else batch


TORCH_UINT16 = getattr(torch, "uint16", None)
EIGHT_TO_SIXTEEN_BITS = 255 / 65535


def check_pixel_dtype(dtype) -> None:
    """Pixel values are uint8 (0..255), uint16 (0..65535) or floating point; anything else is refused."""
    if isinstance(dtype, torch.dtype):
        if dtype == torch.uint8 or dtype == TORCH_UINT16 or dtype.is_floating_point:
            return
    elif dtype == np.uint8 or dtype == np.uint16 or np.issubdtype(dtype, np.floating):
        return
    raise ValueError(
        f"Unsupported pixel dtype {dtype}: pass uint8 (0..255), uint16 (0..65535) or floating-point images "
        "(in [0, 1], or 0..255 when their maximum is above 1)"
    )


def array_rescale_factor(image: np.ndarray, rescale_factor: float) -> float | None:
    """The factor that brings a numpy image to [0, 1] (`rescale_factor` is the one for 8-bit values), or None for
    a floating-point image already in [0, 1]."""
    if image.dtype == np.uint16:
        return rescale_factor * EIGHT_TO_SIXTEEN_BITS
    if np.issubdtype(image.dtype, np.floating):
        return None if image.size == 0 or not np.nanmax(image) > 1 else rescale_factor
    return rescale_factor


def tensor_rescale_factors(batch: torch.Tensor, rescale_factor: float) -> torch.Tensor | float:
    """`array_rescale_factor` for a `(B, C, H, W)` batch: one factor per image (1 where it is already in [0, 1])."""
    if batch.dtype == TORCH_UINT16:
        return rescale_factor * EIGHT_TO_SIXTEEN_BITS
    if batch.dtype.is_floating_point:
        peak = batch.flatten(1).amax(dim=1) if batch.numel() else batch.new_zeros(len(batch))
        factors = torch.where(peak > 1, rescale_factor, 1.0)
        return factors.to(torch.float32).view(-1, 1, 1, 1)
    return rescale_factor


def pil_image_array(image: PIL.Image.Image) -> np.ndarray:
    """`(H, W)` or `(H, W, 3)` pixels of a PIL image in a dtype that says their range: 16-bit grayscale stays
    uint16 (PIL's RGB conversion would clip it to white), other modes become 8-bit RGB (alpha is dropped)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(f"A mode {image.mode} image with values {values.min()}..{values.max()} is not 16-bit")
        return values.astype(np.uint16)
    if image.mode == "F":
        return np.asarray(image, dtype=np.float32)
    if image.mode in ("L", "RGB"):
        return np.asarray(image)
    return np.asarray(image.convert("RGB"))


def label_maps(segmentation_maps, image_shapes: list[tuple[int, int]]) -> list:
    """One `(H, W)` map (numpy array or tensor) per image, each of its image's size; otherwise a ValueError naming
    the shapes. A 3-D array or tensor is a batch of maps when its first dimension is the number of images."""
    maps = list(segmentation_maps) if isinstance(segmentation_maps, list | tuple) else [segmentation_maps]
    maps = [np.asarray(m) if isinstance(m, PIL.Image.Image) else m for m in maps]
    if len(maps) == 1 and maps[0].ndim == 3 and len(image_shapes) == maps[0].shape[0] != 1:
        maps = list(maps[0])
    if len(maps) != len(image_shapes):
        raise ValueError(f"Got {len(maps)} segmentation map(s) for {len(image_shapes)} image(s); pass one per image.")
    checked = []
    for index, (label_map, image_shape) in enumerate(zip(maps, image_shapes, strict=True)):
        shape = tuple(label_map.shape)
        if len(shape) == 3 and shape[0] == 1:
            label_map = label_map[0]
        elif len(shape) == 3 and shape[-1] == 1:
            label_map = label_map[..., 0]
        if label_map.ndim != 2:
            raise ValueError(
                f"Segmentation map {index} has shape {shape}: expected (height, width) class ids, like the image's "
                f"{image_shape}; convert a colour (RGB) label map to class ids first"
            )
        if tuple(label_map.shape) != tuple(image_shape):
            raise ValueError(
                f"Segmentation map {index} has shape {tuple(label_map.shape)}, but its image has shape "
                f"{tuple(image_shape)} (height, width): they must be the same size"
            )
        checked.append(label_map)
    return checked


class DDRNetImageProcessorKwargs(ImagesKwargs, total=False):
    r"""
    align_corners (`bool`, *optional*, defaults to `self.align_corners`):
        `align_corners` of the bilinear upsampling in `post_process_semantic_segmentation`; the model's
        `config.align_corners`.
    """

    align_corners: bool


class DDRNetImageProcessor(PilBackend):
    r"""
    Prepares images (and optionally segmentation maps) for DDRNet.

    DDRNet is evaluated at full resolution on Cityscapes (1024x2048), so resizing is off by default. Images are
    rescaled to [0, 1] and normalized with the ImageNet mean and standard deviation, as the original training
    code did. Segmentation maps are resized with nearest-neighbour interpolation and returned as int64 `labels`;
    each must be `(height, width)` class ids of its image's size.

    With `do_rescale`, pixel values are read by their type, the same way for PIL images, numpy arrays and tensors:
    uint8 is scaled by `rescale_factor` (1/255); uint16 (16-bit PNGs, PIL modes `I;16` and `I`) by
    `rescale_factor * 255 / 65535`; a floating-point image whose maximum is at most 1 is taken as already in
    [0, 1] and not rescaled, one with a larger maximum is taken as 0..255 and scaled by `rescale_factor`. Other
    dtypes are refused with a ValueError. Grayscale images are repeated to 3 channels; PIL images with a palette or
    alpha are converted to RGB.

    `align_corners` (default `False`, as the released weights need) is that of the model's `config`: the bilinear
    upsampling of `post_process_semantic_segmentation` follows it.

    Example:

    ```python
    >>> import numpy as np
    >>> import torch
    >>> from modeling_ddrnet import DDRNetConfig, DDRNetForSemanticSegmentation, DDRNetImageProcessor

    >>> model = DDRNetForSemanticSegmentation(DDRNetConfig.from_variant("ddrnet-23-slim")).eval()
    >>> processor = DDRNetImageProcessor(align_corners=model.config.align_corners)
    >>> image = np.zeros((360, 480, 3), dtype=np.uint8)  # (height, width, channels)
    >>> inputs = processor(image, return_tensors="pt")
    >>> inputs["pixel_values"].shape
    torch.Size([1, 3, 360, 480])
    >>> with torch.no_grad():
    ...     outputs = model(**inputs)
    >>> segmentation = processor.post_process_semantic_segmentation(outputs, target_sizes=[(360, 480)])[0]
    >>> segmentation.shape
    torch.Size([360, 480])
    ```
    """

    valid_kwargs = DDRNetImageProcessorKwargs
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
    align_corners = False

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
        channels = expected_channels(kwargs.get("image_mean"), kwargs.get("do_normalize"))
        for index, image in enumerate(images):
            check_pixel_dtype(image.dtype)
            if image.shape[0] == 1 and channels not in (None, 1):
                images[index] = np.repeat(image, channels, axis=0)
            elif channels is not None and image.shape[0] != channels:
                raise ValueError(
                    f"Expected images of {channels} channels (one per value of image_mean), got an image of shape "
                    f"{image.shape} (channels first)"
                )
        image_shapes = [image.shape[1:] for image in images]
        pixel_values = self._preprocess(images, **kwargs)
        if return_tensors is not None:
            check_one_size([image.shape[-2:] for image in pixel_values])
        data = {"pixel_values": pixel_values}
        if segmentation_maps is not None:
            maps = [np.asarray(m)[None] for m in label_maps(segmentation_maps, image_shapes)]
            map_kwargs = {**kwargs, "do_normalize": False, "do_rescale": False, "resample": PILImageResampling.NEAREST}
            data["labels"] = [m.squeeze(0).astype(np.int64) for m in self._preprocess(maps, **map_kwargs)]
        return BatchFeature(data=data, tensor_type=return_tensors)

    def process_image(self, image, do_convert_rgb: bool | None = None, input_data_format=None, **kwargs) -> np.ndarray:
        """One image as a channels-first numpy array; PIL images keep their bit depth (`pil_image_array`)."""
        if isinstance(image, PIL.Image.Image):
            image = pil_image_array(image)
            do_convert_rgb = False
            input_data_format = ChannelDimension.LAST if image.ndim == 3 else None
        return super().process_image(
            image, do_convert_rgb=do_convert_rgb, input_data_format=input_data_format, **kwargs
        )

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
            factor = array_rescale_factor(image, rescale_factor) if do_rescale else None
            if factor is not None and image.dtype != np.uint8:
                # Rescale first, so that resizing (through PIL) sees [0, 1] floats rather than 16-bit values.
                image, factor = image.astype(np.float32) * np.float32(factor), None
            if do_resize:
                image = self.resize(image, size, resample)
            if factor is not None:
                image = self.rescale(image, factor)
            if do_normalize:
                image = self.normalize(image, image_mean, image_std)
            processed.append(image.astype(np.float32, copy=False))  # float64 inputs give the model's dtype too
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
        if isinstance(images, list | tuple) and len({tuple(image.shape) for image in images}) > 1:
            if not do_resize:
                check_one_size([image.shape[-2:] for image in images])
            if segmentation_maps is not None:
                raise ValueError("Label maps of images of different sizes: process each image with its map")
            arguments = {"resample": resample, "do_resize": do_resize, "do_rescale": do_rescale, "size": size}
            arguments.update(do_normalize=do_normalize, rescale_factor=rescale_factor)
            arguments.update(image_mean=image_mean, image_std=image_std)
            parts = [self._preprocess_tensors(image, None, **arguments)["pixel_values"] for image in images]
            return BatchFeature(data={"pixel_values": torch.cat(parts)})
        batch = image_batch(images, expected_channels(image_mean, do_normalize))
        factors = tensor_rescale_factors(batch, rescale_factor) if do_rescale else None
        pixel_values = batch.float()
        if do_resize:
            target = (size.height, size.width)
            mode = TORCH_INTERPOLATION.get(resample, "bilinear")
            antialias = mode != "nearest-exact"  # PIL's filters widen their support when they shrink
            pixel_values = F.interpolate(pixel_values, size=target, mode=mode, antialias=antialias)
        if factors is not None:
            pixel_values = pixel_values * factors
        if do_normalize:
            mean = torch.as_tensor(image_mean, dtype=torch.float32, device=pixel_values.device).view(1, -1, 1, 1)
            std = torch.as_tensor(image_std, dtype=torch.float32, device=pixel_values.device).view(1, -1, 1, 1)
            pixel_values = (pixel_values - mean) / std
        data = {"pixel_values": pixel_values}
        if segmentation_maps is not None:
            maps = label_maps(segmentation_maps, [tuple(batch.shape[-2:])] * len(batch))
            labels = torch.stack([torch.as_tensor(m, device=pixel_values.device) for m in maps])
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
            target_sizes: one `(height, width)` per image; logits are bilinearly upsampled to it (with the
                processor's `align_corners`) before the argmax. Without it, the maps stay at the logits' resolution
                (1/8 of the input).
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
        for size in target_sizes or []:
            if len(size) != 2 or not all(isinstance(v, int | np.integer) and v > 0 for v in size):
                raise ValueError(f"A target size is (height, width) of two positive integers, got {size}")
        results = []
        for index, image_logits in enumerate(logits):
            if target_sizes is not None:
                size = tuple(int(v) for v in target_sizes[index])
                image_logits = F.interpolate(
                    image_logits[None], size=size, mode="bilinear", align_corners=self.align_corners
                )[0]
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
