"""The optimizer and learning-rate schedule of the original recipe, with the options beyond it (a head learning
rate multiplier, a linear warmup)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from modeling_ddrnet import DDRNetForSemanticSegmentation

from ..errors import UserInputError


def poly_schedule(
    max_steps: int, power: float = 0.9, warmup_steps: int = 0, warmup_start_factor: float = 0.1
) -> Callable[[int], float]:
    """The original per-iteration schedule, `lr = base_lr * (1 - step / max_steps) ** power`, after an optional
    linear warmup from `warmup_start_factor * base_lr` to `base_lr` over the first `warmup_steps` steps; with a
    warmup, the poly decay runs over the remaining `max_steps - warmup_steps` steps."""
    decay_steps = max_steps - warmup_steps

    def factor(step: int) -> float:
        if step < warmup_steps:
            return warmup_start_factor + (1.0 - warmup_start_factor) * step / warmup_steps
        return (1.0 - min(step - warmup_steps, decay_steps) / decay_steps) ** power

    return factor


def poly_scheduler(
    optimizer: torch.optim.Optimizer,
    max_steps: int,
    power: float = 0.9,
    warmup_steps: int = 0,
    warmup_start_factor: float = 0.1,
) -> torch.optim.lr_scheduler.LambdaLR:
    """`poly_schedule` over a run of `max_steps` optimizer steps, stepped once per optimizer step."""
    if warmup_steps >= max_steps:
        raise UserInputError(
            f"--warmup_steps {warmup_steps} leaves no step for the learning-rate decay of this {max_steps}-step run: "
            "lower it"
        )
    schedule = poly_schedule(max_steps, power, warmup_steps, warmup_start_factor)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def head_parameters(model: DDRNetForSemanticSegmentation) -> list[torch.nn.Parameter]:
    """The parameters that an ImageNet backbone does not provide: the pyramid pooling module and the heads."""
    heads = [model.ddrnet.dappm, model.decode_head, model.aux_head]
    return [parameter for module in heads if module is not None for parameter in module.parameters()]


def sgd_with_momentum_buffers(
    model: DDRNetForSemanticSegmentation,
    learning_rate: float,
    momentum: float,
    weight_decay: float,
    head_lr_multiplier: float = 1.0,
) -> torch.optim.SGD:
    """The original optimizer (fused SGD), with the heads and DAPPM in a second parameter group at
    `head_lr_multiplier` times the backbone's learning rate when the multiplier is not 1.

    Momentum buffers exist from the start, so that a skipped first step leaves them well defined (the fused kernel
    would otherwise create them uninitialized)."""
    if head_lr_multiplier == 1.0:
        groups = [{"params": list(model.parameters())}]
    else:
        heads = {id(parameter) for parameter in head_parameters(model)}
        groups = [
            {"params": [p for p in model.parameters() if id(p) not in heads], "lr": learning_rate},
            {"params": head_parameters(model), "lr": learning_rate * head_lr_multiplier},
        ]
    optimizer = torch.optim.SGD(groups, lr=learning_rate, momentum=momentum, weight_decay=weight_decay, fused=True)
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            optimizer.state[parameter]["momentum_buffer"] = torch.zeros_like(parameter)
    return optimizer
