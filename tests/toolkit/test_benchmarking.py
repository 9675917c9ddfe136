"""The benchmarks' measuring tools: peak memory of a piece of work and the fitted growth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddrnet_toolkit.benchmarking.memory import measure_peak_memory, reset_rss_peak
from ddrnet_toolkit.benchmarking.scaling import fit_line


def test_the_peak_memory_of_a_piece_of_work_is_what_it_allocated():
    if not reset_rss_peak():
        pytest.skip("needs Linux's /proc/self/clear_refs")

    def allocate(megabytes: int) -> None:
        block = np.ones(megabytes * 2**20 // 8)  # written, so resident
        del block

    small = measure_peak_memory(lambda: allocate(50), torch.device("cpu"))
    large = measure_peak_memory(lambda: allocate(400), torch.device("cpu"))
    assert 45 <= small.above_start_mb <= 120 and 390 <= large.above_start_mb <= 470
    assert large.peak_mb > large.above_start_mb and large.how.startswith("peak RSS")


def test_a_fitted_line_gives_the_growth_and_how_far_rows_are_from_it():
    exact = fit_line("study", "seconds", "s per MP", [0.5, 2.0, 8.0], [0.6, 2.1, 8.1])
    assert exact.slope == pytest.approx(1.0) and exact.intercept == pytest.approx(0.1) and exact.worst < 1e-9
    bent = fit_line("study", "seconds", "s per MP", [1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert bent.slope == pytest.approx(1.5) and bent.worst == pytest.approx(abs(1.5 * 1 - 2 / 3 - 1) / 1)
