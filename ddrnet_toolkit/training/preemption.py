"""SIGTERM (a scheduler preempting the job) asks the run to checkpoint and stop at the end of a step."""

from __future__ import annotations

import signal

import torch
from accelerate import Accelerator


class Preemption:
    """SIGTERM asks the run to checkpoint and stop at the end of a step.

    With one process it stops at the next step. Several processes must stop together, so they agree through a
    collective at the next synchronization point (a logging step).
    """

    def __init__(self, accelerator: Accelerator):
        self.accelerator = accelerator
        self.signal: int | None = None
        signal.signal(signal.SIGTERM, self._record)

    def _record(self, signum: int, frame) -> None:
        self.signal = signum

    def should_stop(self, at_sync_point: bool) -> bool:
        if self.accelerator.num_processes == 1:
            return self.signal is not None
        if not at_sync_point:
            return False
        requested = torch.tensor(float(self.signal is not None), device=self.accelerator.device)
        return self.accelerator.reduce(requested, "max").item() > 0

    def describe(self) -> str:
        return f"signal {self.signal}" if self.signal is not None else "a signal on another process"
