"""Prepare a DDRNet for deployment: BatchNorm folded into convolutions, no auxiliary head, channels_last, compiled.

    model = prepare_for_inference(DDRNetForSemanticSegmentation.from_pretrained(path))
    logits = model(pixel_values).logits   # equal to the plain model's within float tolerance

Folding is how the paper measured speed (its speed script removes BatchNorm and gives the convolutions biases).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .modeling_ddrnet import DDRNetForSemanticSegmentation


def _fold_pair(module: nn.Module, conv_name: str, bn_name: str) -> None:
    conv, bn = getattr(module, conv_name), getattr(module, bn_name)
    if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
        setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
        setattr(module, bn_name, nn.Identity())


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution into it, in place (the model must be in eval mode).

    Blocks declare their (conv, bn) pairs in `conv_bn_pairs`; in `nn.Sequential`s a BatchNorm right after a
    convolution is folded. BatchNorms that precede a convolution (DAPPM, the heads' first layer) stay.
    """
    if model.training:
        raise ValueError("fold_batch_norms needs a model in eval mode (call model.eval() first)")
    for module in model.modules():
        for conv_name, bn_name in getattr(module, "conv_bn_pairs", ()):
            _fold_pair(module, conv_name, bn_name)
        if isinstance(module, nn.Sequential):
            names = [name for name, _ in module.named_children()]
            for conv_name, bn_name in zip(names, names[1:], strict=False):
                _fold_pair(module, conv_name, bn_name)
    return model


def prepare_for_inference(
    model: DDRNetForSemanticSegmentation,
    channels_last: bool = True,
    compile: bool = False,
    inplace: bool = False,
    compile_backend: str = "inductor",
) -> DDRNetForSemanticSegmentation:
    """An eval-mode copy of `model` with BatchNorm folded, the auxiliary head dropped, NHWC weights and,
    optionally, `torch.compile` applied (with `compile_backend`). Feed it `channels_last` inputs for the full
    benefit."""
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    model.aux_head = None
    model.config.use_auxiliary_head = False
    fold_batch_norms(model)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile and compile_backend == "inductor":
        # Freezing turns the (now constant) weights into constants that inductor can prepack and fuse.
        model = torch.compile(model, options={"freezing": True})
    elif compile:
        model = torch.compile(model, backend=compile_backend)
    return model
