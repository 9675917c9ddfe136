"""An exponential moving average (EMA) of a model's weights, the model that a run with `--ema_decay` publishes.

After the n-th optimizer step, with weights `w_1 ... w_n` after each step and decay `d`, the average is

    ema_n = sum_{k=1..n} (1 - d) * d ** (n - k) * w_k / (1 - d ** n),

the exponentially weighted mean of the weights seen so far. The `1 - d ** n` correction (as in Adam) keeps early
averages from leaning on the random initial weights, so a decay of 0.9999 is usable from the first step. It is
computed recursively: `ema_n = b_n * ema_{n-1} + (1 - b_n) * w_n` with `b_n = d * (1 - d ** (n - 1)) / (1 - d ** n)`.

BatchNorm running statistics are floating-point buffers and are averaged the same way (they belong to the
weights they were measured with); integer buffers (`num_batches_tracked`) are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """The running average of `model`'s weights, held in a frozen copy of the model (`self.model`)."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def past_weight(self) -> float:
        """`b_n` of the module docstring for the next update: 0 at the first one, then rising towards `decay`."""
        n = self.num_updates + 1
        return self.decay * (1.0 - self.decay ** (n - 1)) / (1.0 - self.decay**n)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of `model` (same architecture, e.g. the unwrapped training model) in."""
        past = self.past_weight()
        averaged, current = [], []
        for mine, theirs in zip(self.model.state_dict().values(), model.state_dict().values(), strict=True):
            if mine.is_floating_point():
                averaged.append(mine)
                current.append(theirs.detach())
            else:
                mine.copy_(theirs)
        torch._foreach_lerp_(averaged, current, 1.0 - past)
        self.num_updates += 1

    def state_dict(self) -> dict:
        """What a checkpoint stores (accelerate's `register_for_checkpointing` calls it)."""
        return {"decay": self.decay, "num_updates": self.num_updates, "weights": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state["decay"] != self.decay:
            raise ValueError(f"the checkpoint averaged with decay {state['decay']}, this run asks for {self.decay}")
        self.model.load_state_dict(state["weights"])
        self.num_updates = state["num_updates"]
