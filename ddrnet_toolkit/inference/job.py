"""The processes a prediction job runs on: one, or every process of an `accelerate launch` over one or several
machines. Each predicts its own share of the inputs; they exchange small Python objects (what they found, what
they did) and count the whole job's progress on one bar, over a gloo process group of their own, so that the
exchange stays on the CPU whatever backend the devices use.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from tqdm.auto import tqdm


class Progress:
    """The job's progress bar in one process: `update` after each piece of work, `close` once this process's share
    is done."""

    def __init__(self, total: int | None, unit: str):
        self.bar = tqdm(total=total, desc="predicting", unit=unit, disable=total == 0)

    def update(self, count: int) -> None:
        self.bar.update(count)

    def close(self) -> None:
        self.bar.close()


class SharedProgress(Progress):
    """The whole job's progress bar, shown by the main process: every process counts its own work, and a thread in
    each sums the counts over `group` every `interval` seconds until every process has closed its share. A peer that
    fails breaks that exchange, and the next `update` (or `close`) raises its error: the survivors stop within a
    piece of work instead of predicting their whole share first."""

    def __init__(self, total: int | None, unit: str, group: dist.ProcessGroup, is_main: bool, interval: float = 1.0):
        self.bar = tqdm(total=total, desc="predicting", unit=unit, disable=not is_main or total == 0)
        self.group, self.interval = group, interval
        self.done, self.finished = 0, False
        self.error: RuntimeError | None = None
        self.exchange = threading.Thread(target=self._exchange, name="prediction-progress", daemon=True)
        self.exchange.start()

    def _exchange(self) -> None:
        try:
            while True:
                counts = torch.tensor([self.done, int(self.finished)], dtype=torch.int64)
                dist.all_reduce(counts, group=self.group)
                self.bar.n = int(counts[0])
                self.bar.refresh()
                if counts[1] == dist.get_world_size(self.group):
                    return
                time.sleep(self.interval)
        except RuntimeError as error:
            self.error = error

    def update(self, count: int) -> None:
        if self.error is not None:
            raise self.error
        self.done += count

    def close(self) -> None:
        """Wait until every process has done its share (a barrier), then close the bar."""
        self.finished = True
        self.exchange.join()
        if self.error is not None:
            raise self.error
        self.bar.close()


class JobProcesses:
    """This process's place in the job: `index` of `count` processes, and the exchanges between them (none with one
    process)."""

    def __init__(self, group: dist.ProcessGroup | None = None):
        self.group = group
        self.index = 0 if group is None else dist.get_rank(group)
        self.count = 1 if group is None else dist.get_world_size(group)

    @classmethod
    def of_initialized_run(cls, timeout_seconds: float) -> JobProcesses:
        """The processes of the launch whose default process group is initialized (by accelerate), with a gloo group
        for the job's exchanges whose every wait is bounded by `timeout_seconds`."""
        return cls(dist.new_group(backend="gloo", timeout=timedelta(seconds=timeout_seconds)))

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def all_gather(self, value: Any) -> list[Any]:
        """Every process's `value`, in process order (picklable values only)."""
        if self.group is None:
            return [value]
        values: list[Any] = [None] * self.count
        dist.all_gather_object(values, value, group=self.group)
        return values

    def progress(self, total: int | None, unit: str) -> Progress:
        if self.group is None:
            return Progress(total, unit)
        return SharedProgress(total, unit, self.group, self.is_main)
