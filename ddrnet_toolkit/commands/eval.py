"""Score a DDRNet checkpoint on a labelled split: mean IoU, accuracies and a per-class IoU table.

The data options are train.py's: Cityscapes (`--data_dir`), split files with a labels file (`--data_dir
--labels_file`), or a `datasets` dataset (`--dataset_name --labels_file`).

Single scale at full resolution is the paper's protocol; multi-scale and flip match DDRNet.pytorch's "ms+flip".
Runs on one device, or on several under `accelerate launch` (each process scores a shard; results are summed).
With --exported_model, an ONNX or OpenVINO export of the model (fp32 or int8) is scored instead, on the CPU.

Examples:
    python scripts/eval.py --model_name_or_path outputs/ddrnet-23-slim/best_model --data_dir /data/cityscapes
    python scripts/eval.py --model_name_or_path M --dataset_name my_saved_dataset --labels_file labels.json
    python scripts/eval.py --model_name_or_path M --data_dir D --scales 0.5 0.75 1.0 1.25 1.5 1.75 --flip \\
        --output_file results.json
    python scripts/eval.py --model_name_or_path M --data_dir D --exported_model ddrnet.int8.xml
"""

from __future__ import annotations

import argparse

from ..errors import UserInputError
from ..evaluation.report import format_table
from ..evaluation.scoring import evaluate_split
from ..files import writable_file, writable_folder, write_json
from ..inference.images import save_png
from ..inference.visualization import comparison, model_palette
from ..model_folder import check_not_a_model_file, class_names
from ..training.accelerator import end_run, make_accelerator
from .arguments import (
    add_dataset_arguments,
    add_distributed_arguments,
    add_engine_arguments,
    add_inference_arguments,
    check_dataset_arguments,
    check_engine_arguments,
    dataset_from_arguments,
    engine_from_arguments,
    inference_options,
    non_negative_int,
)
from .runner import entry_point


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name_or_path", required=True, help="Model folder (save_pretrained output).")
    add_dataset_arguments(parser)
    parser.add_argument("--split", default="validation", help="Labelled split to score (default: validation).")
    add_inference_arguments(parser)
    add_engine_arguments(parser)
    parser.add_argument("--per_device_eval_batch_size", type=int, default=1)
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default=None)
    parser.add_argument("--output_file", default=None, help="Write the results as JSON here.")
    parser.add_argument(
        "--pictures_dir",
        default=None,
        help="Write the first --num_pictures images of the split beside their predicted and true masks here, as PNGs.",
    )
    parser.add_argument("--num_pictures", type=non_negative_int, default=4, help="Pictures for --pictures_dir.")
    add_distributed_arguments(parser)
    args = parser.parse_args(argv)
    check_dataset_arguments(args, parser)
    check_engine_arguments(args, parser)
    args.inference = inference_options(args, parser)
    if args.per_device_eval_batch_size < 1:
        parser.error("--per_device_eval_batch_size must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    output_file = None
    if args.output_file:
        output_file = check_not_a_model_file(writable_file(args.output_file, "--output_file"), "--output_file")
    pictures_dir = None
    if args.pictures_dir:
        pictures_dir = writable_folder(check_not_a_model_file(args.pictures_dir, "--pictures_dir"), "--pictures_dir")
    accelerator = make_accelerator(timeout_seconds=args.ddp_timeout, mixed_precision=args.mixed_precision)
    with accelerator.main_process_first():
        dataset = dataset_from_arguments(args)
    split = dataset.split(args.split, labelled=True, what="--split")
    engine = engine_from_arguments(args, accelerator.device)
    if engine.config.num_labels != dataset.label_space.num_labels:
        raise UserInputError(
            f"--model_name_or_path {args.model_name_or_path} predicts {engine.config.num_labels} classes, "
            f"{dataset.name} has {dataset.label_space.num_labels}: fine-tune it first (train.py "
            "--ignore_mismatched_sizes)"
        )
    result = evaluate_split(
        engine,
        split,
        accelerator,
        batch_size=args.per_device_eval_batch_size,
        num_workers=args.num_workers,
        options=args.inference,
        num_samples_to_keep=args.num_pictures if pictures_dir is not None else 0,
    )
    if result.nonfinite_problem() is not None:
        raise UserInputError(f"--model_name_or_path {args.model_name_or_path}: {result.nonfinite_problem()}")
    results = result.to_json(class_names(engine.config))
    results.update(
        split=args.split,
        dataset=dataset.name,
        scales=args.scales,
        flip=args.flip,
        sliding_window=args.sliding_window,
        model=str(args.model_name_or_path),
        engine=engine.name,
        exported_model=args.exported_model,
    )
    if accelerator.is_main_process:
        print(format_table(results))
        if pictures_dir is not None:
            palette = model_palette(args.model_name_or_path, engine.config.id2label)
            for number, sample in enumerate(result.samples):
                save_png(comparison(*sample, palette), pictures_dir / f"{args.split}_{number:03d}.png")
            print(f"wrote {len(result.samples)} picture(s) (image | prediction | truth) to {pictures_dir}")
        if output_file is not None:
            output_file.parent.mkdir(parents=True, exist_ok=True)
            write_json(output_file, results)
            print(f"wrote {output_file}")
    end_run(accelerator)
    return 0


cli = entry_point(main)


if __name__ == "__main__":
    cli()
