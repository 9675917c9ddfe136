"""The scaling run's figure: one panel per study, the measured points and, where one was fitted, the line."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plotting import import_pyplot
from .scaling import Fit, ScalingRow

INFERENCE = ("inference (whole image)", "inference (sliding window)")


def plot_scaling(results: dict, path: Path, title: str) -> None:
    """Write the figure of `measure_scaling`'s results to `path` (PNG)."""
    pyplot = import_pyplot()
    rows: list[ScalingRow] = results["rows"]
    fits = {(fit.study, fit.quantity): fit for fit in results["fits"]}
    preparation = tuple(sorted({row.study for row in rows if row.study.startswith("preparation")}))
    per_step = "megapixels per step (batch x crop)"
    panels = (  # (title, studies, quantity, x label, y label); inference spans 250x: log-log
        ("inference: time per image (log-log)", INFERENCE, "seconds", "megapixels", "s"),
        ("inference: peak memory above start (log-log)", INFERENCE, "above_start_mb", "megapixels", "MB"),
        ("training step: time", ("training step",), "seconds", per_step, "s"),
        ("training step: peak memory above start", ("training step",), "above_start_mb", per_step, "MB"),
        ("evaluation: time", ("evaluation",), "seconds", "images", "s"),
        ("preparation: time", preparation, "seconds", "rows", "s"),
    )
    figure, axes = pyplot.subplots(2, 4, figsize=(18, 8))
    for axis, (name, studies, quantity, x_label, y_label) in zip(axes.flat, panels, strict=False):
        for study in studies:
            chosen = [row for row in rows if row.study == study and getattr(row, quantity) is not None]
            if not chosen:
                continue
            sizes = [row.size for row in chosen]
            (points,) = axis.plot(sizes, [getattr(row, quantity) for row in chosen], "o", label=study)
            fit: Fit | None = fits.get((study, quantity))
            if fit is not None:
                line = np.geomspace(min(sizes), max(sizes), 50) if "log" in name else np.array([0, max(sizes)])
                axis.plot(line, fit.slope * line + fit.intercept, "-", color=points.get_color(), alpha=0.6)
        if "log" in name:
            axis.set(xscale="log", yscale="log")
        axis.set(title=name, xlabel=x_label, ylabel=y_label)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    loading = [row for row in rows if row.study == "data loading"]
    axis = axes.flat[6]
    if loading:
        axis.plot([row.size for row in loading], [row.throughput for row in loading], "o-")
    axis.set(title="DataLoader throughput (stored PNG, crop)", xlabel="workers", ylabel="images/s")
    axis.grid(alpha=0.3)
    storage = [row for row in rows if row.study == "storage"]
    axis = axes.flat[7]
    if storage:
        names = [row.setting.replace(", ", "\n") for row in storage]
        axis.barh(names, [row.throughput for row in storage], color="tab:green")
        for index, row in enumerate(storage):
            axis.annotate(f" {row.extra['mb_per_image']:.2f} MB/image", (row.throughput, index), fontsize=8)
    axis.set(title="training images: images/s per worker", xlabel="images/s")
    axis.tick_params(axis="y", labelsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    pyplot.close(figure)
