#!/usr/bin/env python
"""The whole system end to end on a synthetic Cityscapes (what `make demo` runs).

1. generate a synthetic Cityscapes (procedural road scenes in the exact Cityscapes layout), or with
   `--dataset synthetic-custom` a 6-class dataset of its own described by split files and a labels file,
2. train DDRNet-23-slim through `accelerate launch` (the GPU when there is one, else the CPU),
3. evaluate the best checkpoint with scripts/eval.py,
4. predict a few validation images (colour masks and overlays),
5. publish the model with a model card to a local hub folder,
then print where everything is and how to open TensorBoard. Every step is the command a user would type; each is
printed before it runs. `--config` trains with a recipe of configs/recipes/ (the demo's size flags still apply),
and any flag the demo does not know goes to train.py as it is, e.g. to scale a recipe down to the demo's length:

    python scripts/demo.py --config configs/recipes/cityscapes-plus.yaml --seed 1 --warmup_steps 20 --ema_decay 0.99
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

from ddrnet_toolkit.devices import training_mixed_precision

SCRIPTS = Path(__file__).resolve().parent
CONFIGS = SCRIPTS.parent / "configs" / "accelerate"


def run(step: str, command: list[str]) -> None:
    print(f"\n==> {step}\n$ {shlex.join(command)}", flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    print(f"    ({time.perf_counter() - start:.0f}s)", flush=True)


def generate_data(args: argparse.Namespace, data_dir: Path, python: str) -> tuple[list[str], list[Path], list[str]]:
    """Write the synthetic dataset once; return its data options, a few validation images and the prediction
    formats that apply (Cityscapes label ids only for the Cityscapes classes)."""
    if args.dataset == "synthetic-cityscapes":
        if not (data_dir / "lists" / "train.lst").is_file():
            size = ["--height", str(args.height), "--width", str(args.width)]
            counts = ["--num_train", str(args.num_train), "--num_val", str(args.num_val), "--num_test", "4"]
            script = str(SCRIPTS / "make_synthetic_cityscapes.py")
            run("Generate a synthetic Cityscapes", [python, script, "--output_dir", str(data_dir), *counts, *size])
        val_images = sorted((data_dir / "leftImg8bit" / "val").glob("*/*.png"))[:4]
        return ["--data_dir", str(data_dir)], val_images, ["color", "overlay", "cityscapes"]
    root = data_dir / "split_files"
    if not (root / "lists" / "train.lst").is_file():
        counts = ["--num_train", str(args.num_train), "--num_val", str(args.num_val), "--num_test", "4"]
        script = str(SCRIPTS / "make_synthetic_custom.py")
        run("Generate a synthetic 6-class dataset", [python, script, "--output_dir", str(data_dir), *counts])
    val_images = sorted((root / "images" / "val").glob("*.png"))[:4]
    return ["--data_dir", str(root), "--labels_file", str(root / "labels.json")], val_images, ["color", "overlay"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="outputs/demo", help="Everything the demo writes goes here.")
    parser.add_argument(
        "--dataset",
        choices=["synthetic-cityscapes", "synthetic-custom"],
        default="synthetic-cityscapes",
        help="Road scenes in the Cityscapes layout, or a 6-class dataset of its own (split files + labels file).",
    )
    parser.add_argument("--num_train", type=int, default=100, help="Synthetic training images.")
    parser.add_argument("--num_val", type=int, default=20, help="Synthetic validation images.")
    parser.add_argument("--height", type=int, default=256, help="Image height (synthetic-cityscapes).")
    parser.add_argument("--width", type=int, default=512, help="Image width (synthetic-cityscapes).")
    parser.add_argument("--max_train_steps", type=int, default=200)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=None, help="Square training crop (default: 256, custom: 64).")
    parser.add_argument(
        "--learning_rate", type=float, default=None, help="Default 0.02, or the recipe's with --config."
    )
    parser.add_argument("--variant", default="ddrnet-23-slim")
    parser.add_argument("--config", default=None, help="A training recipe (configs/recipes/*.yaml).")
    parser.add_argument("--seed", type=int, default=None, help="Training seed (default: train.py's or the recipe's).")
    args, train_extra = parser.parse_known_args(argv)
    if args.learning_rate is None and args.config is None:
        args.learning_rate = 0.02

    output_dir = Path(args.output_dir).resolve()
    data_dir, model_dir = output_dir / "data", output_dir / "model"
    python = sys.executable
    use_gpu = torch.cuda.is_available()
    config = CONFIGS / ("single_gpu.yaml" if use_gpu else "cpu.yaml")
    data, val_images, formats = generate_data(args, data_dir, python)
    custom = args.dataset == "synthetic-custom"
    crop = args.crop or (64 if custom else 256)
    base_size = 96 if custom else max(args.height, args.width)  # the custom images are 48 to 96 pixels a side

    eval_steps = max(1, args.max_train_steps // 2)
    train = [python, "-m", "accelerate.commands.launch", "--config_file", str(config), str(SCRIPTS / "train.py")]
    train += ["--variant", args.variant, *data, "--output_dir", str(model_dir), "--overwrite_output_dir"]
    train += ["--max_train_steps", str(args.max_train_steps), "--per_device_train_batch_size", str(args.batch_size)]
    train += ["--crop_size", str(crop), str(crop), "--base_size", str(base_size)]
    train += ["--eval_steps", str(eval_steps)]
    for flag in ("config", "learning_rate", "seed"):
        if getattr(args, flag) is not None:
            train += [f"--{flag}", str(getattr(args, flag))]
    train += ["--checkpointing_steps", str(eval_steps), "--logging_steps", "25", "--num_workers", "1"]
    train += ["--dataset_display_name", args.dataset]
    if custom:
        train += ["--class_weights", "auto", "--ohem_min_kept", str(args.batch_size * crop * crop // 4)]
    if use_gpu:
        train += ["--mixed_precision", training_mixed_precision(torch.device("cuda")), "--channels_last"]
    run(f"Train {args.variant} ({'GPU' if use_gpu else 'CPU'})", [*train, *train_extra])

    best = str(model_dir / "best_model")
    results_file = output_dir / "eval_results.json"
    evaluate = [python, str(SCRIPTS / "eval.py"), "--model_name_or_path", best, *data]
    run("Evaluate the best checkpoint", [*evaluate, "--output_file", str(results_file)])
    predictions = output_dir / "predictions"
    predict = [python, str(SCRIPTS / "predict.py"), "--model_name_or_path", best, "--output_dir", str(predictions)]
    run("Predict a few validation images", [*predict, "--formats", *formats, "--inputs", *map(str, val_images)])
    repo_id = f"demo/{args.variant}-{args.dataset}"
    push = [python, str(SCRIPTS / "push_to_hub.py"), "--model_name_or_path", best, "--hub_dir", str(output_dir / "hub")]
    run("Publish to a local hub", [*push, "--repo_id", repo_id, "--sample_image", str(val_images[0])])

    miou = json.loads(results_file.read_text())["mean_iou"]
    print(f"""
Done. Validation mIoU of the best checkpoint: {miou:.3f}
  synthetic data    {data_dir}
  last model        {model_dir / "last_model"}
  best model        {best}
  evaluation        {results_file}
  predictions       {predictions}/{{{",".join(formats)}}}
  local hub repo    {output_dir / "hub" / repo_id}
Demo app of the published repo (http://127.0.0.1:7860; needs gradio: pip install "ddrnet-hf[space]"):
  cd {output_dir / "hub" / repo_id} && {python} app.py
TensorBoard:
  {Path(python).parent / "tensorboard"} --logdir {model_dir / "logs"}
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
