"""The benchmarking subpackage's decisions and protocols, with the device's answers injected so that every CUDA
branch is checked on a CPU: the GPU check's cases per device, the CUDA timing protocol, cuDNN autotuning, the
training launch command, a check that degrades (missing packages, a broken section) instead of failing; and
the measuring tools of the scaling benchmark: peak memory of a piece of work and the fitted growth."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from ddrnet_toolkit.benchmarking import gpu_check, timing
from ddrnet_toolkit.benchmarking.check_cases import (
    Case,
    inference_cases,
    multi_gpu_problem,
    training_cases,
    training_precisions,
)
from ddrnet_toolkit.benchmarking.data_wait import DataWait
from ddrnet_toolkit.benchmarking.gpu_check import QUICK, CheckContext, CheckRow, Section, run_gpu_check
from ddrnet_toolkit.benchmarking.memory import measure_peak_memory, reset_rss_peak
from ddrnet_toolkit.benchmarking.precision_runs import launch_command
from ddrnet_toolkit.benchmarking.scaling import fit_line


def labels(cases) -> list[str]:
    return [case.label for case in cases]


def test_inference_cases_follow_the_device():
    assert labels(inference_cases("cuda", bfloat16=True)) == [
        "fp32",
        "fp16 autocast",
        "bf16 autocast",
        "channels_last",
        "channels_last + bf16",
        "fast path",
        "fast path + bf16",
        "fast path + bf16 + torch.compile",
        "fast path + bf16 + CUDA graph",
    ]
    older_gpu = inference_cases("cuda", bfloat16=False)
    assert "bf16 autocast" not in labels(older_gpu) and older_gpu[-1].label == "fast path + fp16 + CUDA graph"
    assert older_gpu[-1].dtype == torch.float16 and older_gpu[-1].mode == "cuda_graph"
    assert not any("CUDA graph" in label for label in labels(inference_cases("cpu", bfloat16=True)))


def test_training_cases_and_precisions_follow_bfloat16_support():
    assert labels(training_cases(bfloat16=True)) == [
        "fp32",
        "fp16",
        "bf16",
        "fp32 + channels_last",
        "fp16 + channels_last",
        "bf16 + channels_last",
        "bf16 + channels_last + torch.compile",
    ]
    cases = training_cases(bfloat16=False)
    assert [case.compile for case in cases] == [False] * 4 + [True]
    assert cases[-1].dtype == torch.float16 and cases[-1].mode == "channels_last_amp"
    assert training_precisions(bfloat16=True) == ["no", "fp16", "bf16"]
    assert training_precisions(bfloat16=False) == ["no", "fp16"]


def test_a_multi_gpu_run_needs_two_gpus():
    assert multi_gpu_problem("cuda", 2) is None
    assert multi_gpu_problem("cuda", 1) == "needs 2 GPUs, this machine has 1"
    assert "GPUs only" in multi_gpu_problem("cpu", 0)


def test_cuda_timing_synchronizes_and_reads_the_peak_memory(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device: calls.append(("synchronize", device)))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append(("empty_cache",)))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device: calls.append(("reset", device)))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: 3 * 2**20)
    cuda = torch.device("cuda", 0)
    timing.reset_peak_memory(cuda)
    assert timing.time_callable(lambda: None, cuda, warmup=1, min_time=0.0) >= 0
    assert timing.peak_memory(cuda) == 3.0
    assert calls[:2] == [("empty_cache",), ("reset", cuda)]
    assert calls.count(("synchronize", cuda)) == 2  # after the warm-up and after the timed run
    calls.clear()
    cpu = torch.device("cpu")
    timing.reset_peak_memory(cpu)
    timing.time_callable(lambda: None, cpu, warmup=1, min_time=0.0)
    assert calls == [] and timing.peak_memory(cpu) is None


def test_cudnn_autotuning_is_turned_on_for_cuda_only(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    assert not timing.enable_cudnn_autotuning(torch.device("cpu"))
    assert timing.enable_cudnn_autotuning(torch.device("cuda")) and torch.backends.cudnn.benchmark


def test_autocast_takes_the_dtype_asked_for():
    with timing.autocast(torch.device("cpu"), True, torch.float16):
        assert torch.get_autocast_dtype("cpu") == torch.float16
    with timing.autocast(torch.device("cpu"), True):
        assert torch.get_autocast_dtype("cpu") == timing.amp_dtype(torch.device("cpu"))
    with timing.autocast(torch.device("cpu"), False, torch.float16):
        assert not torch.is_autocast_enabled("cpu")


def test_the_training_launch_command_per_device():
    cpu = launch_command("fp16", "cpu")
    assert cpu[cpu.index("--mixed_precision") + 1] == "fp16" and "--cpu" in cpu and "--multi_gpu" not in cpu
    assert cpu[-2:] == ["-m", "ddrnet_toolkit.commands.train"]
    two_gpus = launch_command("bf16", "cuda", num_processes=2)
    assert "--cpu" not in two_gpus and "--multi_gpu" in two_gpus
    assert two_gpus[two_gpus.index("--num_processes") + 1] == "2"
    assert int(two_gpus[two_gpus.index("--main_process_port") + 1]) > 0


def test_data_wait_verdict():
    assert DataWait(0.12, 0.1, 8, True).waits and not DataWait(0.105, 0.1, 8, True).waits
    assert DataWait(0.2, 0.1, 8, True).ratio == pytest.approx(2.0)


def test_the_check_degrades_a_section_at_a_time(monkeypatch, tmp_path):
    def broken(context):
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore lines")

    def working(context):
        return [CheckRow("works", "case", seconds=0.5, images_per_second=2.0, result="1.00x fp32")]

    sections = (
        Section("needs", ("no_such_module_for_the_check",), working),
        Section("breaks", (), broken),
        Section("works", (), working),
        Section("left out", (), broken),
    )
    monkeypatch.setattr(gpu_check, "SECTIONS", sections)
    messages = []
    report = run_gpu_check(
        torch.device("cpu"), QUICK, tmp_path, tmp_path, ("needs", "breaks", "works"), progress=messages.append
    )
    assert [(row.section, row.status) for row in report.rows] == [
        ("needs", "skipped"),
        ("breaks", "error"),
        ("works", "ok"),
    ]
    assert report.rows[0].result == 'needs no_such_module_for_the_check (pip install "ddrnet-hf[train]")'
    assert report.rows[1].result == "CUDA error: an illegal memory access was encountered"
    assert [row.section for row in report.failures()] == ["breaks"]
    assert "RuntimeError: CUDA error" in (tmp_path / "errors.log").read_text()
    assert set(report.section_seconds) == {"breaks", "works"} and "== works" in messages
    markdown, data = report.write(tmp_path)
    table = markdown.read_text()
    assert table.startswith("GPU check ") and "torch " + torch.__version__ in table.splitlines()[0]
    assert "| works | case | - | 500.0 | 2.00 | - | 1.00x fp32 | ok |" in table
    saved = json.loads(data.read_text())
    assert saved["facts"]["device_type"] == "cpu" and saved["sizes"]["compile_backend"] == "eager"
    assert [row["status"] for row in saved["rows"]] == ["skipped", "error", "ok"]


def test_a_mode_that_cannot_run_is_one_error_row_and_the_others_are_timed(monkeypatch, tmp_path):
    # A CUDA graph capture on this CPU raises, as a capture could on a GPU: the fp32 row must still be measured.
    cases = [Case("fp32", "fp32"), Case("fast path + bf16 + CUDA graph", "cuda_graph", torch.bfloat16)]
    monkeypatch.setattr(gpu_check, "inference_cases", lambda device_type, bfloat16: cases)
    sizes = replace(QUICK, height=32, width=64, warmup=0, min_time=0.0)
    context = CheckContext(torch.device("cpu"), sizes, tmp_path, tmp_path, bfloat16=True)
    rows = gpu_check.inference_section(context)
    assert [(row.case, row.status) for row in rows] == [("fp32", "ok"), ("fast path + bf16 + CUDA graph", "error")]
    assert rows[0].images_per_second > 0 and rows[0].result == "1.00x fp32"
    assert "fast path + bf16 + CUDA graph" in context.tracebacks[0]


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
