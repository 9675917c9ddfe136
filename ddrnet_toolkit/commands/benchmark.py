"""Speed report: inference per variant and mode, training steps, the data pipeline and the metric, in one run.

Inference is timed the paper's way (batch 1, 1024x2048, eval mode, logits upsampled to the input, warm-up, then
enough iterations for over a second between device synchronizations). Modes: fp32 eager; amp (fp16 autocast on
GPUs, bf16 on CPUs); channels_last; both; torch.compile; the fast path (BatchNorm folded, no aux head, NHWC),
in fp32 and with amp; onnxruntime (CPU). Training: a full step with the loss at 1024x1024, batch 8. Every speed-up
is a ratio to the eager fp32 row measured in the same run. Data: the training pipeline's images per second per
worker, the original code's and this one side by side, and through DataLoaders of 1 and 2 workers (see
benchmark_data.py).

Engines (CPU): with --int8_model_name_or_path and --int8_data_dir, a trained model is exported to ONNX and (with
the openvino extra) OpenVINO, each quantized to int8 as the export commands do (calibrated on
--num_calibration_images of --int8_calibration_split), and timed at the inference size as eager fp32, the fast
path, onnxruntime fp32 and int8, OpenVINO fp32 (f32, and OpenVINO's own precision choice) and int8, interleaved;
each engine's mean IoU and the share of pixels whose label differs from PyTorch's are measured on
--int8_eval_split, and its multiply-accumulates per second are set against the CPU's peak (the best SGEMM for
fp32, 4x that for int8). --prediction_images N also times predict.py's whole path (decoding, model, outputs
written) on N synthetic images of the inference size, PyTorch against the int8 engines.

--preset scaling measures instead how every cost grows (see ddrnet_toolkit/benchmarking/scaling.py): inference time
and peak memory vs resolution (256x512 to 2048x4096 whole, sliding windows beyond), a training step vs crop and
batch, evaluation vs number of images, preparation vs rows and processes, the training images' storage, and
DataLoader throughput vs workers, with the fitted growth; it writes scaling.{md,json,png} to --output_dir. Peak
memory on a CPU is the process's peak RSS (Linux /proc), on a GPU torch's peak of allocated memory.

Examples:
    python scripts/benchmark.py --device cuda                       # the paper's setting, all variants
    python scripts/benchmark.py --preset cpu-small                  # a few minutes on a small CPU machine
    python scripts/benchmark.py --preset scaling --device cpu       # how costs grow (about 15 minutes, 2 cores)
    python scripts/benchmark.py --preset cpu-small --skip inference onnxruntime training data metric \\
        --int8_model_name_or_path outputs/ddrnet-23-slim/best_model --int8_data_dir /data/cityscapes
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from dataclasses import replace

import torch

from modeling_ddrnet import VARIANTS

from ..benchmarking.data_pipeline import measure_data_pipeline
from ..benchmarking.int8 import exported_engines, int8_markdown, int8_summary, measure_int8
from ..benchmarking.metric import measure_metric
from ..benchmarking.models import (
    INFERENCE_MODES,
    TRAINING_MODES,
    measure_inference,
    measure_onnxruntime,
    measure_training,
    variant_name,
)
from ..benchmarking.prediction import measure_prediction
from ..benchmarking.scaling import PLANS, as_json, markdown, measure_scaling
from ..benchmarking.scaling_plot import plot_scaling
from ..benchmarking.timing import add_speedups, as_dicts, enable_cudnn_autotuning, markdown_table
from ..data.selection import load_dataset
from ..errors import UserInputError
from ..export.int8 import CalibrationImages, spread_indices
from ..files import writable_folder, write_json, write_text_atomically
from ..inference.engines import PyTorchEngine
from ..model_folder import load_trained_model
from .arguments import data_folder, device_from_arguments
from .runner import entry_point

PRESETS = {
    "paper": {},
    "cpu-small": {
        "variants": ["ddrnet-23-slim"],
        "height": 256,
        "width": 512,
        "train_crop": 256,
        "train_batch_size": 2,
        "modes": ["fp32", "channels_last", "fast_path", "fast_path_compile"],
        "train_modes": ["fp32", "channels_last"],
        "data_height": 512,
        "data_width": 1024,
        "min_time": 0.5,
        "warmup": 2,
        "metric_height": 512,
        "metric_width": 1024,
    },
    "scaling": {"variants": ["ddrnet-23-slim"]},
}
SCALING_STUDIES = ("inference", "training", "evaluation", "preparation")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(PRESETS), default="paper", help="Defaults for the options below.")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda.")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=INFERENCE_MODES,
        default=None,
        help="Inference modes (default: all; compile only on GPUs).",
    )
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--train_modes", nargs="+", choices=TRAINING_MODES, default=list(TRAINING_MODES))
    parser.add_argument("--train_batch_size", type=int, default=8)
    parser.add_argument("--train_crop", type=int, default=1024)
    parser.add_argument("--data_height", type=int, default=1024)
    parser.add_argument("--data_width", type=int, default=2048)
    parser.add_argument("--metric_height", type=int, default=1024)
    parser.add_argument("--metric_width", type=int, default=2048)
    parser.add_argument(
        "--skip", nargs="+", default=[], choices=["inference", "onnxruntime", "training", "data", "metric"]
    )
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--min_time", type=float, default=1.0, help="Seconds per timed run.")
    parser.add_argument("--output_dir", default="outputs/benchmark", help="Where results.json and results.md go.")
    scaling = parser.add_argument_group("scaling (--preset scaling)")
    scaling.add_argument("--scaling_plan", choices=list(PLANS), default="full", help="smoke: tiny sizes, seconds.")
    scaling.add_argument("--scaling_studies", nargs="+", choices=SCALING_STUDIES, default=list(SCALING_STUDIES))
    int8 = parser.add_argument_group("engines (a trained model through PyTorch, onnxruntime, OpenVINO; fp32, int8)")
    int8.add_argument("--int8_model_name_or_path", default=None, help="The trained model (save_pretrained folder).")
    int8.add_argument(
        "--int8_data_dir",
        default=None,
        help="Its dataset: a Cityscapes folder, or a folder of .lst split files with --int8_labels_file.",
    )
    int8.add_argument("--int8_labels_file", default=None, help="Classes file of a dataset other than Cityscapes.")
    int8.add_argument("--int8_calibration_split", default="train", help="Split of the calibration images.")
    int8.add_argument("--int8_eval_split", default="validation", help="Labelled split scored before and after.")
    int8.add_argument("--num_calibration_images", type=int, default=32, help="Spread evenly over the split.")
    int8.add_argument("--cache_dir", default=None, help="datasets cache folder.")
    int8.add_argument(
        "--prediction_images",
        type=int,
        default=0,
        help="Also time predict.py's path end to end (decoding, model, colour and overlay PNGs written) on this "
        "many synthetic images of the inference size, PyTorch against the int8 engines (default: 0, not timed).",
    )
    preset = parser.parse_known_args(argv)[0].preset
    parser.set_defaults(**PRESETS[preset])
    args = parser.parse_args(argv)
    if (args.int8_model_name_or_path is None) != (args.int8_data_dir is None):
        parser.error("--int8_model_name_or_path and --int8_data_dir go together: the model and the images it sees")
    if args.num_calibration_images < 1:
        parser.error(f"--num_calibration_images must be at least 1, got {args.num_calibration_images}")
    if args.prediction_images < 0:
        parser.error(f"--prediction_images must be at least 0, got {args.prediction_images}")
    args.device = device_from_arguments(args.device, parser)
    return args


def measure_trained_int8(args: argparse.Namespace) -> tuple[list, dict]:
    """`measure_int8` on the options' model and data (and `measure_prediction` with --prediction_images): its rows
    and summary."""
    data_dir = data_folder(args.int8_data_dir, "--int8_data_dir")
    data = load_dataset(data_dir=data_dir, labels_file=args.int8_labels_file, cache_dir=args.cache_dir)
    calibration = data.split(args.int8_calibration_split, what="--int8_calibration_split")
    evaluation = data.split(args.int8_eval_split, labelled=True, what="--int8_eval_split")
    model = load_trained_model(args.int8_model_name_or_path)
    if model.config.num_labels != data.label_space.num_labels:
        raise UserInputError(
            f"--int8_model_name_or_path {args.int8_model_name_or_path} predicts {model.config.num_labels} classes, "
            f"{data.name} has {data.label_space.num_labels}"
        )
    images = CalibrationImages(calibration, spread_indices(len(calibration), args.num_calibration_images))
    with tempfile.TemporaryDirectory() as folder:
        engines = exported_engines(model, images, folder, args.height, args.width)
        size = (args.batch_size, args.height, args.width)
        rows, results, peak = measure_int8(model, engines, evaluation, *size, args.warmup, args.min_time)
        if args.prediction_images:
            compared = {"pytorch": PyTorchEngine(model)}
            compared.update({name: engine for name, (engine, precision) in engines.items() if precision == "int8"})
            rows += measure_prediction(
                compared,
                args.int8_model_name_or_path,
                args.prediction_images,
                args.height,
                args.width,
                variant=variant_name(model.config),
            )
    summary = int8_summary(results, str(args.int8_model_name_or_path), args.int8_eval_split, len(evaluation), peak)
    return rows, summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = args.device
    autotuned = enable_cudnn_autotuning(device)
    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    if args.preset == "scaling":
        return run_scaling(args, device_name)
    modes = args.modes or [m for m in INFERENCE_MODES if "compile" not in m or device.type == "cuda"]
    rows = []
    for variant in args.variants:
        if "inference" not in args.skip:
            rows += measure_inference(
                variant, modes, device, args.batch_size, args.height, args.width, args.warmup, args.min_time
            )
        if "onnxruntime" not in args.skip:
            rows.append(
                measure_onnxruntime(variant, args.batch_size, args.height, args.width, args.warmup, args.min_time)
            )
        if "training" not in args.skip:
            rows += measure_training(
                variant, args.train_modes, device, args.train_batch_size, args.train_crop, args.warmup, args.min_time
            )
        print(markdown_table([r for r in rows if r.variant == variant]), flush=True)
    int8 = None
    if args.int8_model_name_or_path is not None:
        int8_rows, int8 = measure_trained_int8(args)
        rows += int8_rows
        print(f"{markdown_table(int8_rows)}\n\n{int8_markdown(int8)}", flush=True)
    if "data" not in args.skip:
        rows += measure_data_pipeline(height=args.data_height, width=args.data_width, crop=args.train_crop)
    if "metric" not in args.skip:
        rows += measure_metric(height=args.metric_height, width=args.metric_width, min_time=args.min_time)
    add_speedups(rows)

    header = (
        f"Benchmark {time.strftime('%Y-%m-%d')}, {device_name}, torch {torch.__version__}, cudnn.benchmark={autotuned}"
    )
    table = markdown_table(rows)
    if int8 is not None:
        table += f"\n\n{int8_markdown(int8)}"
    print(f"\n{header}\n\n{table}")
    output_dir = writable_folder(args.output_dir, "--output_dir")
    write_text_atomically(output_dir / "results.md", f"{header}\n\n{table}\n")
    results = {"header": header, "rows": as_dicts(rows)}
    if int8 is not None:
        results["engines"] = int8
    write_json(output_dir / "results.json", results)
    print(f"\nwrote {output_dir / 'results.md'} and {output_dir / 'results.json'}")
    return 0


def run_scaling(args: argparse.Namespace, device_name: str) -> int:
    """`--preset scaling`: the tables, the fitted growth and the figure, printed and written to --output_dir."""
    output_dir = writable_folder(args.output_dir, "--output_dir")
    plan = replace(PLANS[args.scaling_plan], variant=args.variants[0])
    results = measure_scaling(plan, args.device, tuple(args.scaling_studies))
    header = (
        f"Scaling {time.strftime('%Y-%m-%d')}, {plan.variant}, {args.device.type} ({device_name}), torch "
        f"{torch.__version__}, plan {args.scaling_plan}"
    )
    text = f"{header}\n\n{markdown(results)}\n"
    print(f"\n{text}")
    write_text_atomically(output_dir / "scaling.md", text)
    write_json(output_dir / "scaling.json", {"header": header, **as_json(results)})
    plot_scaling(results, output_dir / "scaling.png", header)
    print(f"wrote {output_dir / 'scaling.md'}, scaling.json and scaling.png")
    return 0


cli = entry_point(main)


if __name__ == "__main__":
    cli()
