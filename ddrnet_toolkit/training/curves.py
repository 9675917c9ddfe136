"""Training curves of runs from their TensorBoard logs: read the scalars back, and draw several runs side by side.

A resumed run writes a new event file that logs its steps again from the checkpoint on; the latest value of each
step wins, so the curve is the one the finished run followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserInputError
from ..files import replace_atomically
from ..plotting import import_pyplot

LOG_FOLDER = "logs"
DEFAULT_TAGS = ("train/loss", "eval/mean_iou")


@dataclass
class Curve:
    steps: list[int]
    values: list[float]


def read_scalars(run_dir: str | Path) -> dict[str, Curve]:
    """Every scalar tag a run logged to TensorBoard, as a curve ordered by step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = Path(run_dir)
    event_files = sorted((run_dir / LOG_FOLDER).rglob("events.out.tfevents.*"), key=lambda path: path.stat().st_mtime)
    if not event_files:
        raise UserInputError(
            f"{run_dir} holds no TensorBoard logs under {LOG_FOLDER}/ (train.py writes them with --report_to "
            "tensorboard)"
        )
    latest: dict[str, dict[int, tuple[float, float]]] = {}
    for path in event_files:
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        for tag in events.Tags()["scalars"]:
            by_step = latest.setdefault(tag, {})
            for event in events.Scalars(tag):
                if event.step not in by_step or by_step[event.step][0] <= event.wall_time:
                    by_step[event.step] = (event.wall_time, event.value)
    return {
        tag: Curve(sorted(by_step), [by_step[step][1] for step in sorted(by_step)]) for tag, by_step in latest.items()
    }


def moving_average(values: list[float], window: int) -> list[float]:
    """The mean of each value and the `window - 1` before it (fewer at the start)."""
    averaged, total = [], 0.0
    for index, value in enumerate(values):
        total += value
        if index >= window:
            total -= values[index - window]
        averaged.append(total / min(index + 1, window))
    return averaged


def plot_runs(
    runs: dict[str, dict[str, Curve]], tags: list[str], output: str | Path, smoothing: int = 1, title: str = ""
) -> None:
    """One panel per tag, one line per run (named by the keys of `runs`), written as a PNG to `output`.

    Runs whose names share the part before the last `-` (e.g. `ours-seed0`, `ours-seed1`) share a colour.
    """
    plt = import_pyplot()
    groups = sorted({name.rsplit("-", 1)[0] for name in runs})
    colours = {group: plt.get_cmap("tab10")(index % 10) for index, group in enumerate(groups)}
    figure, axes = plt.subplots(1, len(tags), figsize=(5.5 * len(tags), 4), squeeze=False)
    for axis, tag in zip(axes[0], tags, strict=True):
        for name, curves in runs.items():
            if tag in curves:
                curve = curves[tag]
                values = moving_average(curve.values, smoothing) if smoothing > 1 else curve.values
                axis.plot(curve.steps, values, color=colours[name.rsplit("-", 1)[0]], label=name, linewidth=1.2)
        axis.set_title(tag)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    replace_atomically(Path(output), lambda temporary: figure.savefig(temporary, format="png", dpi=110))
    plt.close(figure)
