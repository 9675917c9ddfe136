"""PyTorch DDRNet (Hong et al. 2021, "Deep Dual-resolution Networks for Real-time and Accurate Semantic
Segmentation of Road Scenes")."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_ddrnet import DDRNetConfig
from .loss_ddrnet import segmentation_loss


@dataclass
class DDRNetModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch, 4 * base_channels, ceil(H/8), ceil(W/8))`):
            Sum of the detail branch and the upsampled DAPPM context, the input of the segmentation head.
        auxiliary_hidden_state (`torch.FloatTensor` of shape `(batch, 2 * base_channels, ceil(H/8), ceil(W/8))`):
            Detail-branch features after the second-to-last bilateral stage, the input of the auxiliary head.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Returned with `output_hidden_states=True`: the stem output (1/4), the 1/8 features where the
            branches split, then for every bilateral stage its fused context and detail features.
    """

    last_hidden_state: torch.FloatTensor | None = None
    auxiliary_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class DDRNetSemanticSegmenterOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Main loss plus `auxiliary_loss_weight` times the auxiliary loss, when `labels` are given.
        logits (`torch.FloatTensor` of shape `(batch, num_labels, ceil(H/8), ceil(W/8))`):
            Class scores at 1/8 of the input resolution; upsample them to the image size (see
            `DDRNetImageProcessor.post_process_semantic_segmentation`).
        auxiliary_logits (`torch.FloatTensor` of the same shape as `logits`, *optional*):
            Scores of the auxiliary head, in training mode only.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            See `DDRNetModelOutput.hidden_states`.
        main_loss, auxiliary_loss (`torch.FloatTensor` of shape `()`, *optional*):
            The two terms of `loss`, unweighted, for logging.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    auxiliary_logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    main_loss: torch.FloatTensor | None = None
    auxiliary_loss: torch.FloatTensor | None = None


def batch_norm(config: DDRNetConfig, channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=config.batch_norm_eps, momentum=config.batch_norm_momentum)


def resize_to(x: torch.Tensor, reference: torch.Tensor, align_corners: bool) -> torch.Tensor:
    """Bilinearly resize `x` to the spatial size of `reference`."""
    return F.interpolate(x, size=reference.shape[-2:], mode="bilinear", align_corners=align_corners)


class DDRNetBasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet basic block, expansion 1).

    `(batch, in_channels, H, W)` -> `(batch, out_channels, H / stride, W / stride)`. The last block of a stage
    leaves out the final ReLU: the original network activates stage outputs only where they are consumed.
    """

    expansion = 1
    conv_bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, config: DDRNetConfig, in_channels: int, channels: int, stride: int = 1, relu_out: bool = True):
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = batch_norm(config, channels)
        self.conv2 = nn.Conv2d(channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = batch_norm(config, out_channels)
        self.downsample = projection_shortcut(config, in_channels, out_channels, stride)
        self.relu_out = relu_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out)) + shortcut
        return F.relu(out) if self.relu_out else out


class DDRNetBottleneckBlock(nn.Module):
    """1x1 -> 3x3 -> 1x1 residual bottleneck with expansion 2 and no final ReLU, as in DDRNet's last stage.

    `(batch, in_channels, H, W)` -> `(batch, 2 * channels, H / stride, W / stride)`.
    """

    expansion = 2
    conv_bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))

    def __init__(self, config: DDRNetConfig, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = batch_norm(config, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = batch_norm(config, channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = batch_norm(config, out_channels)
        self.downsample = projection_shortcut(config, in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out)) + shortcut


def projection_shortcut(config: DDRNetConfig, in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), batch_norm(config, out_channels)
    )


def basic_stage(config: DDRNetConfig, in_channels: int, channels: int, depth: int, stride: int = 1) -> nn.Sequential:
    """`depth` basic blocks; the first one strides, the last one has no output ReLU when `depth > 1`."""
    blocks = [DDRNetBasicBlock(config, in_channels, channels, stride)]
    blocks += [DDRNetBasicBlock(config, channels, channels, relu_out=i < depth - 2) for i in range(depth - 1)]
    return nn.Sequential(*blocks)


class DDRNetStem(nn.Module):
    """Two stride-2 3x3 convolutions (with bias, as the original): `(batch, 3, H, W)` -> `(batch, C, H/4, W/4)`."""

    conv_bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, config: DDRNetConfig):
        super().__init__()
        channels = config.base_channels
        self.conv1 = nn.Conv2d(config.num_channels, channels, 3, stride=2, padding=1)
        self.bn1 = batch_norm(config, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.bn2 = batch_norm(config, channels)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(pixel_values)))
        return F.relu(self.bn2(self.conv2(x)))


class DDRNetBilateralStage(nn.Module):
    """One stage of both branches followed by bilateral fusion.

    The context branch (`context_in` -> `context_out` channels, stride 2 when its width grows) and the detail
    branch (`2 * base_channels`, 1/8 resolution) run side by side. Then each branch receives the other's
    pre-fusion output: the detail features go down through stride-2 3x3 convolutions (`down`), the context
    features are compressed by a 1x1 convolution and bilinearly upsampled (`compression`).
    """

    def __init__(self, config: DDRNetConfig, context_in: int, context_out: int, context_depth: int, detail_depth: int):
        super().__init__()
        detail_channels = 2 * config.base_channels
        stride = 2 if context_out > context_in else 1
        self.align_corners = config.align_corners
        self.context = basic_stage(config, context_in, context_out, context_depth, stride)
        self.detail = basic_stage(config, detail_channels, detail_channels, detail_depth)
        # The detail branch is at 1/8, the context branch at 1/16 (width 4C) or 1/32 (width 8C).
        down_steps = {4: 1, 8: 2}[context_out // config.base_channels]
        down: list[nn.Module] = []
        channels = detail_channels
        for step in range(down_steps):
            next_channels = channels * 2
            down += [nn.Conv2d(channels, next_channels, 3, stride=2, padding=1, bias=False)]
            down += [batch_norm(config, next_channels)]
            if step < down_steps - 1:
                down += [nn.ReLU()]
            channels = next_channels
        self.down = nn.Sequential(*down)
        self.compression = nn.Sequential(
            nn.Conv2d(context_out, detail_channels, 1, bias=False), batch_norm(config, detail_channels)
        )

    def forward(self, context: torch.Tensor, detail: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        context = self.context(F.relu(context))
        detail = self.detail(F.relu(detail))
        fused_context = context + self.down(F.relu(detail))
        fused_detail = detail + resize_to(self.compression(F.relu(context)), detail, self.align_corners)
        return fused_context, fused_detail


class DDRNetPyramidPoolingBranch(nn.Sequential):
    """Pool (optional) -> BN -> ReLU -> 1x1 convolution."""

    def __init__(self, config: DDRNetConfig, pool: nn.Module | None, in_channels: int, out_channels: int):
        layers = [] if pool is None else [pool]
        layers += [batch_norm(config, in_channels), nn.ReLU(), nn.Conv2d(in_channels, out_channels, 1, bias=False)]
        super().__init__(*layers)


class DDRNetPyramidPoolingRefinement(nn.Sequential):
    """BN -> ReLU -> 3x3 convolution, applied after adding a pooled scale to the previous one."""

    def __init__(self, config: DDRNetConfig, channels: int):
        super().__init__(
            batch_norm(config, channels), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        )


class DDRNetDAPPM(nn.Module):
    """Deep Aggregation Pyramid Pooling Module.

    Average pools at strides 2, 4, 8 and global are projected to `branch_channels`, upsampled, and refined
    hierarchically (each scale is added to the previous refined one). The five scales are concatenated,
    compressed and added to a 1x1 shortcut. `(batch, in_channels, h, w)` -> `(batch, out_channels, h, w)`.
    """

    def __init__(self, config: DDRNetConfig, in_channels: int, branch_channels: int, out_channels: int):
        super().__init__()
        self.align_corners = config.align_corners
        self.scale0 = DDRNetPyramidPoolingBranch(config, None, in_channels, branch_channels)
        pools = [
            nn.AvgPool2d(5, stride=2, padding=2),
            nn.AvgPool2d(9, stride=4, padding=4),
            nn.AvgPool2d(17, stride=8, padding=8),
            nn.AdaptiveAvgPool2d((1, 1)),
        ]
        for index, pool in enumerate(pools, start=1):
            self.add_module(f"scale{index}", DDRNetPyramidPoolingBranch(config, pool, in_channels, branch_channels))
        for index in range(1, len(pools) + 1):
            self.add_module(f"process{index}", DDRNetPyramidPoolingRefinement(config, branch_channels))
        self.compression = DDRNetPyramidPoolingBranch(config, None, branch_channels * 5, out_channels)
        self.shortcut = DDRNetPyramidPoolingBranch(config, None, in_channels, out_channels)
        self.num_pooled_scales = len(pools)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scales = [self.scale0(x)]
        for index in range(1, self.num_pooled_scales + 1):
            pooled = resize_to(getattr(self, f"scale{index}")(x), x, self.align_corners)
            scales.append(getattr(self, f"process{index}")(pooled + scales[-1]))
        return self.compression(torch.cat(scales, dim=1)) + self.shortcut(x)


class DDRNetSegmentationHead(nn.Module):
    """BN -> ReLU -> 3x3 conv -> BN -> ReLU -> 1x1 conv (with bias) to class scores, at the input resolution."""

    conv_bn_pairs = (("conv1", "bn2"),)

    def __init__(self, config: DDRNetConfig, in_channels: int):
        super().__init__()
        self.bn1 = batch_norm(config, in_channels)
        self.conv1 = nn.Conv2d(in_channels, config.head_channels, 3, padding=1, bias=False)
        self.bn2 = batch_norm(config, config.head_channels)
        self.conv2 = nn.Conv2d(config.head_channels, config.num_labels, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.conv1(F.relu(self.bn1(features)))
        return self.conv2(F.relu(self.bn2(x)))


class DDRNetPreTrainedModel(PreTrainedModel):
    config_class = DDRNetConfig
    config: DDRNetConfig
    base_model_prefix = "ddrnet"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["DDRNetBilateralStage"]

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # DDRNet checkpoints are small: reading them whole gives aligned tensors, so CPU kernels compute the same
        # bits as before saving (memory-mapped tensors can be misaligned and take other code paths), and a
        # checkpoint file replaced on disk while the model is in use cannot affect it.
        kwargs.setdefault("disable_mmap", True)
        return super().from_pretrained(*args, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if module.running_mean is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
                module.num_batches_tracked.zero_()


class DDRNetModel(DDRNetPreTrainedModel):
    """The dual-resolution backbone: stem, bilateral stages, final bottlenecks and DAPPM."""

    def __init__(self, config: DDRNetConfig):
        super().__init__(config)
        base = config.base_channels
        detail_channels = 2 * base
        self.stem = DDRNetStem(config)
        self.layer1 = basic_stage(config, base, base, config.stem_depths[0])
        self.layer2 = basic_stage(config, base, detail_channels, config.stem_depths[1], stride=2)
        stages = []
        context_channels = detail_channels
        for multiplier, context_depth, detail_depth in zip(
            config.context_channel_multipliers, config.context_depths, config.detail_depths, strict=True
        ):
            stages.append(
                DDRNetBilateralStage(config, context_channels, base * multiplier, context_depth, detail_depth)
            )
            context_channels = base * multiplier
        self.stages = nn.ModuleList(stages)
        self.detail_bottleneck = DDRNetBottleneckBlock(config, detail_channels, detail_channels)
        self.context_bottleneck = DDRNetBottleneckBlock(config, context_channels, context_channels, stride=2)
        self.dappm = DDRNetDAPPM(config, 2 * context_channels, config.spp_channels, 2 * detail_channels)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> DDRNetModelOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
                Images normalized as `DDRNetImageProcessor` does; any height and width.
            output_hidden_states (`bool`, *optional*):
                Also return the features of every stage (see `DDRNetModelOutput.hidden_states`).
            return_dict (`bool`, *optional*):
                Return a `DDRNetModelOutput` instead of a plain tuple.

        Returns:
            `DDRNetModelOutput` (or a tuple of its fields): `last_hidden_state` of shape `(batch_size,
            4 * base_channels, ceil(height / 8), ceil(width / 8))`, `auxiliary_hidden_state` of shape `(batch_size,
            2 * base_channels, ceil(height / 8), ceil(width / 8))` and, when asked for, `hidden_states`.

        Example:

        ```python
        >>> import torch
        >>> from modeling_ddrnet import DDRNetConfig, DDRNetModel

        >>> model = DDRNetModel(DDRNetConfig.from_variant("ddrnet-23-slim")).eval()
        >>> with torch.no_grad():
        ...     outputs = model(torch.randn(1, 3, 256, 512))
        >>> outputs.last_hidden_state.shape
        torch.Size([1, 128, 32, 64])
        ```
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        hidden_states: list[torch.Tensor] = []

        x = self.layer1(self.stem(pixel_values))
        split = self.layer2(F.relu(x))
        hidden_states += [x, split]
        context, detail = split, split
        auxiliary = split
        for index, stage in enumerate(self.stages):
            context, detail = stage(context, detail)
            hidden_states += [context, detail]
            if index == len(self.stages) - 2:
                auxiliary = detail
        detail = self.detail_bottleneck(F.relu(detail))
        context = self.dappm(self.context_bottleneck(F.relu(context)))
        fused = detail + resize_to(context, detail, self.config.align_corners)

        output = DDRNetModelOutput(
            last_hidden_state=fused,
            auxiliary_hidden_state=auxiliary,
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
        )
        return output if return_dict else output.to_tuple()


class DDRNetForSemanticSegmentation(DDRNetPreTrainedModel):
    """DDRNet with its segmentation head (and the auxiliary head used for training)."""

    def __init__(self, config: DDRNetConfig):
        super().__init__(config)
        self.ddrnet = DDRNetModel(config)
        self.decode_head = DDRNetSegmentationHead(config, 4 * config.base_channels)
        self.aux_head = DDRNetSegmentationHead(config, 2 * config.base_channels) if config.use_auxiliary_head else None
        self.loss_fct = segmentation_loss(config)
        self.post_init()

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of `(batch, num_labels, h, w)` logits against `(batch, H, W)` labels (logits are upsampled)."""
        if logits.shape[-2:] != labels.shape[-2:]:
            logits = F.interpolate(
                logits, size=labels.shape[-2:], mode="bilinear", align_corners=self.config.align_corners
            )
        return self.loss_fct(logits, labels.long())

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> DDRNetSemanticSegmenterOutput | tuple:
        r"""
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
                Images normalized as `DDRNetImageProcessor` does; any height and width.
            labels (`torch.LongTensor` of shape `(batch_size, label_height, label_width)`, *optional*):
                Class ids in `[0, config.num_labels)`, `config.semantic_loss_ignore_index` for pixels to skip,
                usually at the input resolution. The logits are bilinearly upsampled to the labels' size and the
                loss (`config.loss_type`, with the config's class weights) is computed there; in training
                mode the auxiliary head's loss is added with `config.auxiliary_loss_weight`.
            output_hidden_states (`bool`, *optional*):
                Also return the backbone's features of every stage.
            return_dict (`bool`, *optional*):
                Return a `DDRNetSemanticSegmenterOutput` instead of a plain tuple.

        Returns:
            `DDRNetSemanticSegmenterOutput` (or a tuple of its set fields, in order): `logits` of shape
            `(batch_size, config.num_labels, ceil(height / 8), ceil(width / 8))`; with `labels`, `loss` (a scalar)
            and its terms `main_loss` and `auxiliary_loss`; in training mode `auxiliary_logits` of the same shape as
            `logits`.

        Example:

        ```python
        >>> import torch
        >>> from modeling_ddrnet import DDRNetConfig, DDRNetForSemanticSegmentation

        >>> model = DDRNetForSemanticSegmentation(DDRNetConfig.from_variant("ddrnet-23-slim"))
        >>> pixel_values = torch.randn(2, 3, 256, 512)
        >>> labels = torch.randint(0, model.config.num_labels, (2, 256, 512))
        >>> outputs = model(pixel_values, labels=labels)  # training mode: main loss + 0.4 x auxiliary loss
        >>> outputs.loss.backward()
        >>> model.eval()  # doctest: +ELLIPSIS
        DDRNetForSemanticSegmentation(...)
        >>> with torch.no_grad():
        ...     logits = model(pixel_values).logits
        >>> logits.shape
        torch.Size([2, 19, 32, 64])
        ```
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.ddrnet(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.decode_head(outputs.last_hidden_state)
        auxiliary_logits = None
        if self.aux_head is not None and self.training:
            auxiliary_logits = self.aux_head(outputs.auxiliary_hidden_state)

        loss = main_loss = auxiliary_loss = None
        if labels is not None:
            loss = main_loss = self.compute_loss(logits, labels)
            if auxiliary_logits is not None:
                auxiliary_loss = self.compute_loss(auxiliary_logits, labels)
                loss = main_loss + self.config.auxiliary_loss_weight * auxiliary_loss

        output = DDRNetSemanticSegmenterOutput(
            loss=loss,
            logits=logits,
            auxiliary_logits=auxiliary_logits,
            hidden_states=outputs.hidden_states,
            main_loss=main_loss,
            auxiliary_loss=auxiliary_loss,
        )
        # The tuple holds every field the dict output holds, in field order, without the unset ones.
        return output if return_dict else output.to_tuple()


__all__ = [
    "DDRNetPreTrainedModel",
    "DDRNetModel",
    "DDRNetForSemanticSegmentation",
    "DDRNetModelOutput",
    "DDRNetSemanticSegmenterOutput",
]
