#!/usr/bin/env python
"""Score a DDRNet checkpoint on a labelled split: mean IoU, accuracies and a per-class IoU table.

The data options are train.py's: Cityscapes (`--data_dir`), split files with a labels file (`--data_dir
--labels_file`), or a `datasets` dataset (`--dataset_name --labels_file`).

Single scale at full resolution is the paper's protocol; multi-scale and flip match DDRNet.pytorch's "ms+flip".
Runs on one device, or on several under `accelerate launch` (each process scores a shard; results are summed).

Examples:
    python scripts/eval.py --model_name_or_path outputs/ddrnet-23-slim/best_model --data_dir /data/cityscapes
    python scripts/eval.py --model_name_or_path M --dataset_name my_saved_dataset --labels_file labels.json
    python scripts/eval.py --model_name_or_path M --data_dir D --scales 0.5 0.75 1.0 1.25 1.5 1.75 --flip \\
        --output_file results.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ddrnet_toolkit.cli import UserInputError, check_output_file, run_script
from ddrnet_toolkit.dataset_options import add_dataset_arguments, check_dataset_arguments, load_dataset_from_arguments
from ddrnet_toolkit.evaluation import evaluate_split
from ddrnet_toolkit.inference import add_inference_arguments, inference_options
from ddrnet_toolkit.model_loading import load_trained_model
from ddrnet_toolkit.training import end_run, make_accelerator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="Model folder (save_pretrained output).")
    add_dataset_arguments(parser)
    parser.add_argument("--split", default="validation", help="Labelled split to score (default: validation).")
    add_inference_arguments(parser)
    parser.add_argument("--per_device_eval_batch_size", type=int, default=1)
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default=None)
    parser.add_argument("--output_file", default=None, help="Write the results as JSON here.")
    args = parser.parse_args(argv)
    check_dataset_arguments(args, parser)
    args.inference = inference_options(args, parser)
    if args.per_device_eval_batch_size < 1:
        parser.error("--per_device_eval_batch_size must be at least 1")
    return args


def format_table(results: dict) -> str:
    rows = [f"{'class':<16}{'IoU':>8}{'accuracy':>10}"]
    for name, iou in results["per_category_iou"].items():
        accuracy = results["per_category_accuracy"][name]
        rows.append(f"{name[:15]:<16}{_percent(iou):>8}{_percent(accuracy):>10}")
    rows.append("-" * 34)
    rows.append(f"{'mean':<16}{_percent(results['mean_iou']):>8}{_percent(results['mean_accuracy']):>10}")
    rows.append(f"{'overall accuracy':<24}{_percent(results['overall_accuracy']):>10}")
    return "\n".join(rows)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.output_file:
        check_output_file(args.output_file, "--output_file")
    accelerator = make_accelerator(mixed_precision=args.mixed_precision)
    with accelerator.main_process_first():
        dataset = load_dataset_from_arguments(args)
    splits = dataset.splits
    if args.split not in splits or "label" not in splits[args.split].column_names:
        labelled = [name for name, split in splits.items() if "label" in split.column_names]
        raise UserInputError(f"--split {args.split} is not a labelled split; choose from {', '.join(labelled)}")
    model = load_trained_model(args.model_name_or_path).to(accelerator.device)
    if model.config.num_labels != dataset.label_space.num_labels:
        raise UserInputError(
            f"--model_name_or_path {args.model_name_or_path} predicts {model.config.num_labels} classes, "
            f"{dataset.name} has {dataset.label_space.num_labels}: fine-tune it first (train.py "
            "--ignore_mismatched_sizes)"
        )
    result = evaluate_split(
        model,
        splits[args.split],
        accelerator,
        batch_size=args.per_device_eval_batch_size,
        num_workers=args.num_workers,
        **args.inference,
    )
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    results = result.to_json(names)
    results.update(
        split=args.split,
        dataset=dataset.name,
        scales=args.scales,
        flip=args.flip,
        sliding_window=args.sliding_window,
        model=str(args.model_name_or_path),
    )
    if accelerator.is_main_process:
        print(format_table(results))
        if args.output_file:
            Path(args.output_file).write_text(json.dumps(results, indent=2) + "\n")
            print(f"wrote {args.output_file}")
    end_run(accelerator)
    return 0


if __name__ == "__main__":
    run_script(main)
