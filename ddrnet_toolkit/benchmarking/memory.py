"""Peak memory of one piece of work: on a GPU, torch's peak of allocated memory; on the CPU, the process's peak
resident set size (RSS), read from Linux's /proc after resetting its high-water mark.

On the CPU the peak counts everything resident in the process (the interpreter, the libraries, the model, memory
the allocator keeps after earlier work); `above_start` is the peak minus the RSS when the work began, the memory
the work itself needed.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class PeakMemory:
    peak_mb: float
    above_start_mb: float
    how: str  # what was measured, for the tables


def status_kb(field: str) -> int | None:
    """A `VmRSS`/`VmHWM`-style field of /proc/self/status in kB, None where there is no /proc."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_rss_peak() -> bool:
    """Reset the kernel's high-water mark of this process's RSS to its current RSS (Linux >= 4.0)."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def measure_peak_memory(work: Callable[[], object], device: torch.device) -> PeakMemory:
    """Run `work` once and report its peak memory (see the module docstring)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        work()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        return PeakMemory(peak / 2**20, (peak - start) / 2**20, "torch.cuda.max_memory_allocated")
    if reset_rss_peak():
        start = status_kb("VmRSS") or 0
        work()
        peak = status_kb("VmHWM") or 0
        return PeakMemory(peak / 1024, (peak - start) / 1024, "peak RSS (VmHWM after clear_refs)")
    # Without /proc: the process's lifetime peak, which only shows work that needs more than all before it.
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in bytes on macOS, in kB elsewhere
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    work()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return PeakMemory(peak / 2**20, (peak - start) / 2**20, "lifetime peak RSS (getrusage)")
