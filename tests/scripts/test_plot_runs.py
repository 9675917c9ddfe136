"""plot_runs.py: curves read back from TensorBoard logs (a resumed run's later values win), the PNG written, and
the refusals."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from conftest import load_script, run_script
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from ddrnet_toolkit.training.curves import moving_average, read_scalars


def write_run(folder, segments):
    """A run folder whose logs/ holds one event file per (steps, value of step) segment, written in order, as a run
    and its resumptions write them."""
    for index, (steps, value) in enumerate(segments):
        writer = SummaryWriter(str(folder / "logs" / "ddrnet" / f"part{index}"))
        for step in steps:
            writer.add_scalar("train/loss", value(step), step)
        writer.add_scalar("eval/mean_iou", 0.1 * (index + 1), steps[-1])
        writer.close()
        event_file = next((folder / "logs" / "ddrnet" / f"part{index}").iterdir())
        stamp = time.time() + index  # the resumption's file is the newer one
        os.utime(event_file, (stamp, stamp))
    return folder


def test_a_resumed_runs_later_values_replace_the_steps_it_logged_again(tmp_path):
    run = write_run(tmp_path / "run", [(range(1, 7), lambda s: 10.0 - s), (range(4, 10), lambda s: 100.0 + s)])
    curves = read_scalars(run)
    assert curves["train/loss"].steps == list(range(1, 10))
    assert curves["train/loss"].values == [9.0, 8.0, 7.0, 104.0, 105.0, 106.0, 107.0, 108.0, 109.0]
    assert curves["eval/mean_iou"].steps == [6, 9]
    assert moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]


def test_plot_writes_one_png_with_a_panel_per_tag_and_refuses_to_overwrite(tmp_path):
    runs = [write_run(tmp_path / f"seed{i}", [(range(1, 20), lambda s, i=i: 5.0 / s + i)]) for i in range(2)]
    output = tmp_path / "curves.png"
    plot_runs = load_script("plot_runs")
    assert plot_runs.main([*map(str, runs), "--output", str(output), "--names", "ours-0", "ours-1"]) == 0
    two_panels = Image.open(output)
    assert two_panels.format == "PNG" and two_panels.width > 1.5 * two_panels.height  # loss and mIoU side by side
    before = output.read_bytes()
    result = run_script("plot_runs.py", str(runs[0]), "--output", str(output))
    assert result.returncode == 1 and "pass --overwrite" in result.stderr and "Traceback" not in result.stderr
    assert output.read_bytes() == before
    assert plot_runs.main([str(runs[0]), "--output", str(output), "--tags", "train/loss", "--overwrite"]) == 0
    assert Image.open(output).width < two_panels.width
    pixels = np.asarray(Image.open(output).convert("L"))
    assert (pixels < 200).mean() > 0.01  # something is drawn


@pytest.mark.parametrize(
    "arguments,status,message",
    [
        (["--tags", "eval/loss"], 1, "--tags: no run logged eval/loss (logged: eval/mean_iou, train/loss)"),
        (["--names", "a", "b"], 2, "--names gives 2 name(s) for 1 run(s)"),
        (["--smoothing", "0"], 2, "--smoothing must be at least 1, got 0"),
    ],
)
def test_bad_arguments_get_one_line(tmp_path, arguments, status, message):
    run = write_run(tmp_path / "run", [(range(1, 4), float)])
    result = run_script("plot_runs.py", str(run), "--output", str(tmp_path / "x.png"), *arguments)
    assert result.returncode == status, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_a_folder_without_logs_is_named(tmp_path):
    result = run_script("plot_runs.py", str(tmp_path), "--output", str(tmp_path / "x.png"))
    assert result.returncode == 1
    assert f"{tmp_path} holds no TensorBoard logs under logs/" in result.stderr
