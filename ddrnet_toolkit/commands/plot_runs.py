"""Draw the training curves of one or more runs side by side, from their TensorBoard logs, as a PNG.

One panel per tag (default: the training loss and the validation mIoU), one line per run; runs named alike up to a
last `-` part (`--names ours-seed0 ours-seed1 original-seed0`) share a colour.

Example:
    python scripts/plot_runs.py outputs/camvid-seed0 outputs/camvid-seed1 --output docs/camvid-loss.png \\
        --tags train/loss --smoothing 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserInputError
from ..files import writable_file
from ..training.curves import DEFAULT_TAGS, plot_runs, read_scalars
from .runner import entry_point


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="Run folders of train.py (their --output_dir).")
    parser.add_argument("--output", required=True, help="The PNG to write.")
    parser.add_argument(
        "--names", nargs="+", default=None, help="A name per run for the legend (default: folder names)."
    )
    parser.add_argument(
        "--tags",
        nargs="+",
        default=None,
        help=f"TensorBoard scalar tags to draw (default: those of {', '.join(DEFAULT_TAGS)} that the runs logged).",
    )
    parser.add_argument("--smoothing", type=int, default=1, help="Moving average over this many logged values.")
    parser.add_argument("--title", default="", help="A title above the panels.")
    parser.add_argument("--overwrite", action="store_true", help="Replace --output if it exists.")
    args = parser.parse_args(argv)
    if args.names is not None and len(args.names) != len(args.runs):
        parser.error(f"--names gives {len(args.names)} name(s) for {len(args.runs)} run(s)")
    if args.smoothing < 1:
        parser.error(f"--smoothing must be at least 1, got {args.smoothing}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    output = writable_file(args.output, "--output")
    if output.exists() and not args.overwrite:
        raise UserInputError(f"--output {output} exists: pass --overwrite to replace it")
    names = args.names or [Path(run).name for run in args.runs]
    runs = {name: read_scalars(run) for name, run in zip(names, args.runs, strict=True)}
    logged = sorted({tag for curves in runs.values() for tag in curves})
    tags = args.tags or [tag for tag in DEFAULT_TAGS if tag in logged]
    missing = [tag for tag in tags if tag not in logged]
    if missing or not tags:
        raise UserInputError(
            f"--tags: no run logged {', '.join(missing or DEFAULT_TAGS)} (logged: {', '.join(logged)})"
        )
    plot_runs(runs, tags, output, args.smoothing, args.title)
    print(f"wrote {output}")
    return 0


cli = entry_point(main)


if __name__ == "__main__":
    cli()
