"""The GPU check: one run that exercises everything a GPU changes, on the best device present, and reports it as
one table.

Sections, in order, by the names `--sections` and `--skip` take (each is timed; one that breaks becomes an `error`
row and the others still run; one whose packages are missing becomes a `skipped` row naming them):

- inference: the benchmark's modes on one image (fp32, each autocast dtype, channels_last, the fast path, a CUDA
  graph of it on CUDA), outputs checked finite;
- training-steps: a full step (loss, backward, SGD) per precision, with and without channels_last, with peak
  memory;
- training-runs: a real `accelerate launch` of the training command per precision on a synthetic Cityscapes at
  the check's size, read back from its files: finite losses, skipped steps, images/s, mIoU, and the spread of the
  mIoUs;
- data-wait: a training step fed by train.py's loader (its worker count, pinned memory) against the same batches
  held on the device;
- evaluation: eval.py's single-scale, multi-scale + flip and sliding-window scoring, fp32 and under autocast;
- predict: full images in fp32 and under autocast (labels compared with fp32), and the predict command itself;
- demo-app: a pushed repo's app.py segmenting on the device;
- multi-gpu: two processes with SyncBatchNorm (two GPUs or more);
- onnxruntime: the exported graph on onnxruntime's CPU provider;
- compile: the fast path and the training step under `torch.compile` (last, as compiling takes the longest).

`QUICK` runs the same code at tiny sizes (a CPU in about two minutes); `FULL` at the paper's sizes.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import first_line
from ..files import write_json, write_text_atomically
from .check_cases import (
    PRECISION_NAMES,
    autocast_dtypes,
    best_autocast_dtype,
    inference_cases,
    multi_gpu_problem,
    training_cases,
    training_precisions,
)
from .environment import device_facts, facts_line, missing_packages
from .timing import best_times, peak_memory, reset_peak_memory, synchronize, time_callable

# What training, evaluation and prediction import beyond torch and transformers (the [train] extra).
TRAINING_PACKAGES = ("accelerate", "datasets", "evaluate", "tensorboard", "cityscapesscripts", "cv2", "pyspng")
TRAINING_PACKAGES += ("yaml", "tqdm")
# Judged at full size only (tiny models trained for 3 steps agree on nothing).
MEAN_IOU_SPREAD = 0.05  # between the precisions' training runs
MEAN_IOU_CHANGE = 0.01  # evaluation under autocast against fp32
LABEL_CHANGE = 0.01  # share of pixels whose predicted label autocast (or the demo app) changes


@dataclass(frozen=True)
class CheckSizes:
    """The sizes of every section."""

    variant: str = "ddrnet-23-slim"
    height: int = 1024  # inference, evaluation and prediction images; the runs' base size is the longer side
    width: int = 2048
    train_batch: int = 8
    train_crop: int = 1024
    run_steps: int = 200
    run_learning_rate: float = 0.02
    run_logging_steps: int = 20
    num_train: int = 32  # synthetic images
    num_val: int = 8
    data_batches: int = 12
    scales: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
    window: tuple[int, int] = (1024, 1024)
    stride: tuple[int, int] = (768, 768)
    predict_images: int = 4
    warmup: int = 5
    train_warmup: int = 3
    min_time: float = 0.5
    rounds: int = 2
    compile_backend: str = "inductor"
    judge_accuracy: bool = True  # whether mIoU and label changes can fail the check
    run_timeout: int = 900  # seconds per training run


FULL = CheckSizes()
QUICK = replace(
    FULL,
    height=64,
    width=128,
    train_batch=2,
    train_crop=64,
    run_steps=3,
    run_logging_steps=1,
    num_train=4,
    num_val=2,
    data_batches=3,
    scales=(0.75, 1.0),
    window=(64, 64),
    stride=(48, 48),
    predict_images=2,
    warmup=1,
    train_warmup=0,  # the first (timed apart) call warms up
    min_time=0.05,
    rounds=1,
    compile_backend="eager",  # dynamo's tracing without code generation: minutes less on a CPU
    judge_accuracy=False,
    run_timeout=600,
)


@dataclass
class CheckRow:
    """One row of the table; `status` is ok, FAIL (a check failed), skipped or error (the section broke)."""

    section: str
    case: str
    shape: str = "-"
    seconds: float | None = None  # per image, per step or per run, as `case` says
    images_per_second: float | None = None
    peak_memory_mb: float | None = None
    result: str = ""
    status: str = "ok"

    @classmethod
    def timed(cls, section: str, case: str, shape: str, seconds: float, images: int = 1, **fields) -> CheckRow:
        """A row of `seconds` per image, or per step of `images` images; images/s follows."""
        return cls(section, case, shape, seconds, images / seconds, **fields)


@dataclass
class CheckContext:
    """What the sections share: the device, the sizes, the folders, and what earlier sections produced."""

    device: torch.device
    sizes: CheckSizes
    work_dir: Path
    output_dir: Path
    bfloat16: bool
    fp32_seconds: dict[str, float] = field(default_factory=dict)  # eager fp32 times, for the later ratios
    trained_model: Path | None = None  # the fp32 training run's last_model
    tracebacks: list[str] = field(default_factory=list)  # of every section or case that broke, for errors.log
    _dataset: object = None
    _accelerator: object = None

    @property
    def best_dtype(self) -> torch.dtype:
        return best_autocast_dtype(self.bfloat16)

    @property
    def training_dtype(self) -> torch.dtype | None:
        """The autocast dtype of the precision to train with here (`training_mixed_precision`; None: fp32)."""
        from ..devices import training_mixed_precision

        precision = training_mixed_precision(self.device, self.bfloat16)
        return {"no": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]

    @property
    def image_shape(self) -> str:
        return f"1x3x{self.sizes.height}x{self.sizes.width}"

    def data_root(self) -> Path:
        """The synthetic Cityscapes of the check (written once; a kept `work_dir` reuses it)."""
        from dataset_builders.cityscapes.synthetic import make_synthetic_cityscapes

        root = self.work_dir / "data"
        if not (root / "lists" / "val.lst").is_file():
            sizes = self.sizes
            make_synthetic_cityscapes(root, sizes.num_train, sizes.num_val, 0, sizes.height, sizes.width, seed=0)
        return root

    def cache_dir(self) -> Path:
        return self.work_dir / "cache"

    def dataset(self):
        if self._dataset is None:
            from dataset_builders.cityscapes import load_cityscapes

            self._dataset = load_cityscapes(self.data_root(), cache_dir=self.cache_dir())
        return self._dataset

    def accelerator(self):
        """One accelerate `Accelerator` (no mixed precision: autocast is applied per row) for evaluation."""
        if self._accelerator is None:
            from accelerate import Accelerator

            self._accelerator = Accelerator(cpu=self.device.type == "cpu", mixed_precision="no")
        return self._accelerator

    def model_dir(self) -> Path:
        """The fp32 run's model, or a saved untrained one when the training runs did not produce it."""
        if self.trained_model is not None:
            return self.trained_model
        from modeling_ddrnet import DDRNetConfig, DDRNetForSemanticSegmentation, DDRNetImageProcessor

        path = self.work_dir / "untrained_model"
        if not (path / "config.json").is_file():
            torch.manual_seed(0)
            DDRNetForSemanticSegmentation(DDRNetConfig.from_variant(self.sizes.variant)).save_pretrained(path)
            DDRNetImageProcessor().save_pretrained(path)
        return path

    def broken(self, section: str, case: str, error: Exception) -> CheckRow:
        """The `error` row of a section or case that raised `error`; its traceback goes to errors.log."""
        self.tracebacks.append(f"== {section}: {case}\n{traceback.format_exc()}")
        return CheckRow(section, case, result=first_line(error)[:300], status="error")

    def validation_images(self) -> tuple[list[Path], np.ndarray]:
        from PIL import Image

        paths = sorted((self.data_root() / "leftImg8bit" / "val").glob("*/*.png"))[: self.sizes.predict_images]
        return paths, np.stack([np.asarray(Image.open(path).convert("RGB")) for path in paths])


def speed_result(seconds: float, baseline: float | None, extra: str = "") -> str:
    ratio = "" if baseline is None else f"{baseline / seconds:.2f}x fp32"
    return ", ".join(part for part in (ratio, extra) if part)


def inference_section(context: CheckContext) -> list[CheckRow]:
    from .models import build_model, inference_step

    sizes, device = context.sizes, context.device
    cases = [case for case in inference_cases(device.type, context.bfloat16) if not case.mode.endswith("compile")]
    steps, memory, problems, broken = {}, {}, {}, []
    for case in cases:
        reset_peak_memory(device)
        model = build_model(sizes.variant, device, training=False)
        try:
            if case.mode == "cuda_graph":
                step, problems[case.label] = graph_step(model, context)
            else:
                step = inference_step(model, case.mode, device, 1, sizes.height, sizes.width, dtype=case.dtype)
                problems[case.label] = None if torch.isfinite(step()).all() else "outputs not finite"
        except Exception as error:  # a mode this device cannot run is one row; the others are still timed
            broken.append(context.broken("inference", case.label, error))
            continue
        memory[case.label] = peak_memory(device)
        steps[case.label] = step
    best = best_times(steps, device, sizes.warmup, sizes.min_time, sizes.rounds)
    context.fp32_seconds["inference"] = best["fp32"]
    rows = [
        CheckRow(
            "inference",
            label,
            context.image_shape,
            best[label],
            1 / best[label],
            memory[label],
            problems[label] or speed_result(best[label], best["fp32"]),
            "FAIL" if problems[label] else "ok",
        )
        for label in steps
    ]
    return rows + broken


def graph_step(model, context: CheckContext) -> tuple[Callable, str | None]:
    """The fast path replayed from a CUDA graph, and what is wrong with its output (None: equal to eager)."""
    from modeling_ddrnet.fast_inference import prepare_for_inference

    from .cuda_graphs import cuda_graph_step

    pixel_values = torch.randn(1, 3, context.sizes.height, context.sizes.width, device=context.device)
    pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)
    replay, eager = cuda_graph_step(prepare_for_inference(model, channels_last=True), pixel_values, context.best_dtype)
    output = replay()
    if not torch.isfinite(output).all():
        return replay, "outputs not finite"
    difference, tolerance = float((output - eager).abs().max()), 1e-3 * float(eager.abs().max()) + 1e-3
    return replay, None if difference <= tolerance else f"differs from eager by {difference:g}"


def training_step_rows(context: CheckContext, cases) -> list[CheckRow]:
    from .models import training_step

    sizes, device = context.sizes, context.device
    shape = f"{sizes.train_batch}x3x{sizes.train_crop}x{sizes.train_crop}"
    rows = []
    for case in cases:
        reset_peak_memory(device)
        backend = sizes.compile_backend if case.compile else None
        try:
            step = training_step(
                sizes.variant, case.mode, device, sizes.train_batch, sizes.train_crop, case.dtype, backend
            )
            start = time.perf_counter()
            step()  # compiles, when compiled
            synchronize(device)
            first_call = time.perf_counter() - start
            seconds = time_callable(step, device, warmup=sizes.train_warmup, min_time=sizes.min_time)
        except Exception as error:  # a mode this device cannot run is one row; the others are still timed
            rows.append(context.broken("training step", case.label, error))
            continue
        if case.mode == "fp32":
            context.fp32_seconds["training"] = seconds
        compiled = f"compiled ({sizes.compile_backend}) in {first_call:.0f} s" if case.compile else ""
        result = speed_result(seconds, context.fp32_seconds.get("training"), compiled)
        memory = peak_memory(device)
        rows.append(CheckRow("training step", case.label, shape, seconds, sizes.train_batch / seconds, memory, result))
        del step
    return rows


def training_steps_section(context: CheckContext) -> list[CheckRow]:
    return training_step_rows(context, [case for case in training_cases(context.bfloat16) if not case.compile])


def training_runs_section(context: CheckContext) -> list[CheckRow]:
    import shutil

    from ..data.loaders import default_num_workers
    from .precision_runs import RunSettings, launch_command, log_tail, run_training, train_arguments

    sizes = context.sizes
    settings = RunSettings(
        variant=sizes.variant,
        steps=sizes.run_steps,
        batch_size=sizes.train_batch,
        crop=sizes.train_crop,
        base_size=max(sizes.height, sizes.width),
        learning_rate=sizes.run_learning_rate,
        num_workers=default_num_workers(),
        logging_steps=sizes.run_logging_steps,
    )
    data_dir, logs = context.data_root(), context.output_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    shape = f"{sizes.train_batch}x3x{sizes.train_crop}x{sizes.train_crop}, {sizes.run_steps} steps"
    rows, scores = [], {}
    for precision in training_precisions(context.bfloat16):
        output_dir = context.work_dir / "runs" / precision
        shutil.rmtree(output_dir, ignore_errors=True)
        command = launch_command(precision, context.device.type)
        command += train_arguments(data_dir, output_dir, context.cache_dir(), settings)
        result = run_training(command, output_dir, logs / f"train-{precision}.log", precision, sizes.run_timeout)
        case = f"accelerate launch --mixed_precision {precision}"
        if result.returncode != 0:
            text = f"failed after {result.seconds:.0f} s: {log_tail(result.log_file)}"
            rows.append(CheckRow("training run", case, shape, result=text, status="FAIL"))
            continue
        if result.mean_iou is not None:
            scores[precision] = result.mean_iou
        if precision == "no":
            context.trained_model = result.last_model
        losses = f"loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}" if result.losses else "no loss logged"
        miou = "no mIoU" if result.mean_iou is None else f"mIoU {result.mean_iou:.3f}"
        text = f"{losses}, {result.skipped_steps} skipped step(s), {miou}, {result.seconds:.0f} s"
        rows.append(
            CheckRow(
                "training run",
                case,
                shape,
                None if result.images_per_second is None else sizes.train_batch / result.images_per_second,
                result.images_per_second,
                result=text,
                status="ok" if result.losses_finite else "FAIL",
            )
        )
    if len(scores) > 1:
        spread = max(scores.values()) - min(scores.values())
        failed = sizes.judge_accuracy and spread > MEAN_IOU_SPREAD
        judged = f"(at most {MEAN_IOU_SPREAD})" if sizes.judge_accuracy else "(not judged at quick sizes)"
        text = f"{spread:.3f} between " + ", ".join(f"{p} {v:.3f}" for p, v in scores.items()) + f" {judged}"
        rows.append(CheckRow("training run", "mIoU spread", result=text, status="FAIL" if failed else "ok"))
    return rows


def data_wait_section(context: CheckContext) -> list[CheckRow]:
    from ..data.loaders import default_num_workers
    from .data_wait import WAITING_RATIO, measure_data_wait

    sizes = context.sizes
    wait = measure_data_wait(
        context.dataset()["train"],
        sizes.variant,
        context.device,
        batch_size=sizes.train_batch,
        crop=sizes.train_crop,
        base_size=max(sizes.height, sizes.width),
        num_workers=default_num_workers(),
        num_batches=sizes.data_batches,
        dtype=context.training_dtype,
    )
    name = PRECISION_NAMES[context.training_dtype]
    shape = f"{sizes.train_batch}x3x{sizes.train_crop}x{sizes.train_crop}"
    verdict = "waits for data" if wait.waits else "does not wait for data"
    loader = f"train.py's loader ({wait.num_workers} workers, {'pinned' if wait.pinned else 'not pinned'})"
    text = f"{verdict}: the loader's steps take {wait.ratio:.2f}x (waiting above {WAITING_RATIO}x)"
    return [
        CheckRow.timed("data wait", f"{name} step, {loader}", shape, wait.loader_seconds, sizes.train_batch),
        CheckRow.timed(
            "data wait",
            f"{name} step, the same batches on the device",
            shape,
            wait.held_seconds,
            sizes.train_batch,
            result=text,
        ),
    ]


def evaluation_section(context: CheckContext) -> list[CheckRow]:
    from ..inference.segmentation import InferenceOptions
    from ..model_folder import load_trained_model
    from .device_inference import timed_evaluation

    sizes, device = context.sizes, context.device
    model = load_trained_model(context.model_dir()).to(device)
    split = context.dataset()["validation"]
    protocols = {
        "single scale": (InferenceOptions(), autocast_dtypes(context.bfloat16)),
        "ms + flip": (InferenceOptions(scales=sizes.scales, flip=True), [context.best_dtype]),
        "sliding window": (InferenceOptions(window=sizes.window, stride=sizes.stride), [context.best_dtype]),
    }
    untrained = "" if context.trained_model is not None else " (untrained model)"
    rows = []
    for protocol, (options, dtypes) in protocols.items():
        fp32 = None
        for dtype in [None, *dtypes]:
            timed = timed_evaluation(model, split, context.accelerator(), options, dtype)
            fp32 = timed.mean_iou if dtype is None else fp32
            problems = []
            if timed.nonfinite_images:
                problems.append(f"{timed.nonfinite_images} image(s) with non-finite outputs")
            change = timed.mean_iou - fp32
            if dtype is not None and abs(change) > MEAN_IOU_CHANGE:
                problems.append(f"mIoU changed by {change:+.3f} (at most {MEAN_IOU_CHANGE})")
            text = f"mIoU {timed.mean_iou:.3f}{untrained}" + ("" if dtype is None else f" ({change:+.4f} vs fp32)")
            if problems and not sizes.judge_accuracy:
                problems[-1] += " (not judged at quick sizes: the model trained for a few steps)"
            case, shape = f"{protocol}, {PRECISION_NAMES[dtype]}", f"{len(split)} images {sizes.height}x{sizes.width}"
            status = "FAIL" if problems and sizes.judge_accuracy else "ok"
            text = "; ".join([text, *problems])
            rows.append(CheckRow.timed("evaluation", case, shape, timed.seconds, result=text, status=status))
    return rows


def label_change(labels: np.ndarray, reference: np.ndarray, judged: bool) -> tuple[str, str]:
    """The result text and status of labels compared with the fp32 ones (failing above `LABEL_CHANGE` when
    `judged`)."""
    changed = float((labels != reference).mean())
    text = f"{changed:.3%} of the labels differ from predict_classes in fp32"
    if changed > LABEL_CHANGE and not judged:
        text += " (not judged at quick sizes: the model trained for a few steps)"
    return text, "FAIL" if judged and changed > LABEL_CHANGE else "ok"


def predict_section(context: CheckContext) -> list[CheckRow]:
    from ..model_folder import load_trained_model
    from .device_inference import run_predict_command, timed_prediction

    device = context.device
    paths, images = context.validation_images()
    model = load_trained_model(context.model_dir()).to(device).eval()
    reference, rows = None, []
    for dtype in [None, *autocast_dtypes(context.bfloat16)]:
        timed = timed_prediction(model, images, device, dtype)
        reference = timed.labels if dtype is None else reference
        text, status = label_change(timed.labels, reference, context.sizes.judge_accuracy)
        case = f"predict_classes, {PRECISION_NAMES[dtype]}"
        rows.append(CheckRow.timed("predict", case, context.image_shape, timed.seconds, result=text, status=status))
    output_dir = context.work_dir / "predictions"
    seconds = run_predict_command(context.model_dir(), paths, output_dir, device)
    written = len(list(output_dir.rglob("*.png")))
    expected = 2 * len(paths)
    text = f"wrote {written} of {expected} colour masks and overlays (model loading included)"
    status = "ok" if written == expected else "FAIL"
    case, shape = f"ddrnet-predict --device {device}", f"{len(paths)} images"
    rows.append(CheckRow.timed("predict", case, shape, seconds / len(paths), result=text, status=status))
    return rows


def demo_app_section(context: CheckContext) -> list[CheckRow]:
    from ..model_folder import load_trained_model
    from .device_inference import run_demo_app, timed_prediction

    _, images = context.validation_images()
    app = run_demo_app(context.model_dir(), context.work_dir / "hub", images)
    model = load_trained_model(context.model_dir()).to(context.device).eval()
    reference = timed_prediction(model, images, context.device, None).labels
    text, status = label_change(app.labels, reference, context.sizes.judge_accuracy)
    if app.device != context.device.type:
        text, status = f"the app ran on the {app.device}, not the {context.device.type}", "FAIL"
    case = f"app.py segment() on the {app.device}"
    return [CheckRow.timed("demo app", case, context.image_shape, app.seconds, result=text, status=status)]


def multi_gpu_section(context: CheckContext) -> list[CheckRow]:
    from .precision_runs import RunSettings, launch_command, log_tail, run_training, train_arguments

    problem = multi_gpu_problem(context.device.type, torch.cuda.device_count() if torch.cuda.is_available() else 0)
    if problem is not None:
        return [CheckRow("multi-GPU", "2 processes, SyncBatchNorm", result=problem, status="skipped")]
    sizes = context.sizes
    settings = RunSettings(sizes.variant, 20, 4, 512, max(sizes.height, sizes.width), 0.01, 4, 10)
    output_dir = context.work_dir / "runs" / "two_gpus"
    command = launch_command("no", "cuda", num_processes=2)
    command += train_arguments(context.data_root(), output_dir, context.cache_dir(), settings)
    log_file = context.output_dir / "logs" / "train-two-gpus.log"
    result = run_training(command, output_dir, log_file, "no", sizes.run_timeout, num_processes=2)
    log = log_file.read_text(errors="replace")
    checks = {
        "SyncBatchNorm": "SyncBatchNorm" in log,
        "weights identical": "Weights identical on all 2 processes" in log,
    }
    failed = result.returncode != 0 or not all(checks.values())
    text = (
        log_tail(log_file)
        if result.returncode
        else ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items())
    )
    return [
        CheckRow(
            "multi-GPU",
            "2 processes, SyncBatchNorm",
            "4x3x512x512, 20 steps",
            result.seconds,
            result=text,
            status="FAIL" if failed else "ok",
        )
    ]


def onnxruntime_section(context: CheckContext) -> list[CheckRow]:
    from .models import measure_onnxruntime

    sizes = context.sizes
    row = measure_onnxruntime(sizes.variant, 1, sizes.height, sizes.width, sizes.warmup, sizes.min_time)
    baseline = context.fp32_seconds.get("inference")
    text = speed_result(row.seconds, baseline, f"CPU provider, {torch.get_num_threads()} threads")
    return [CheckRow("onnxruntime", "exported graph, fp32", row.shape, row.seconds, row.throughput, result=text)]


def compile_section(context: CheckContext) -> list[CheckRow]:
    from .models import build_model, inference_step

    sizes, device = context.sizes, context.device
    rows = []
    for case in inference_cases(device.type, context.bfloat16):
        if not case.mode.endswith("compile"):
            continue
        reset_peak_memory(device)
        model = build_model(sizes.variant, device, training=False)
        try:
            step = inference_step(
                model, case.mode, device, 1, sizes.height, sizes.width, case.dtype, sizes.compile_backend
            )
            start = time.perf_counter()
            finite = bool(torch.isfinite(step()).all())
            synchronize(device)
            first_call = time.perf_counter() - start
            seconds = best_times({case.label: step}, device, sizes.warmup, sizes.min_time, sizes.rounds)[case.label]
        except Exception as error:  # the training step is still compiled
            rows.append(context.broken("inference", case.label, error))
            continue
        extra = f"compiled ({sizes.compile_backend}) in {first_call:.0f} s" + ("" if finite else "; outputs not finite")
        text = speed_result(seconds, context.fp32_seconds.get("inference"), extra)
        status = "ok" if finite else "FAIL"
        rows.append(
            CheckRow(
                "inference", case.label, context.image_shape, seconds, 1 / seconds, peak_memory(device), text, status
            )
        )
    return rows + training_step_rows(context, [case for case in training_cases(context.bfloat16) if case.compile])


@dataclass(frozen=True)
class Section:
    name: str  # as --sections and --skip take it
    requires: tuple[str, ...]  # modules beyond torch and transformers
    run: Callable[[CheckContext], list[CheckRow]]


SECTIONS = (
    Section("inference", (), inference_section),
    Section("training-steps", (), training_steps_section),
    Section("training-runs", TRAINING_PACKAGES, training_runs_section),
    Section("data-wait", TRAINING_PACKAGES, data_wait_section),
    Section("evaluation", TRAINING_PACKAGES, evaluation_section),
    Section("predict", (*TRAINING_PACKAGES, "av"), predict_section),
    Section("demo-app", (*TRAINING_PACKAGES, "gradio"), demo_app_section),
    Section("multi-gpu", TRAINING_PACKAGES, multi_gpu_section),
    Section("onnxruntime", ("onnx", "onnxscript", "onnxruntime"), onnxruntime_section),
    Section("compile", (), compile_section),
)
SECTION_NAMES = tuple(section.name for section in SECTIONS)
EXTRAS = {"gradio": "space", "onnx": "onnx", "onnxscript": "onnx", "onnxruntime": "onnx"}


@dataclass
class GpuCheckReport:
    facts: dict
    sizes: CheckSizes
    rows: list[CheckRow]
    section_seconds: dict[str, float]

    def failures(self) -> list[CheckRow]:
        return [row for row in self.rows if row.status in ("FAIL", "error")]

    def header(self) -> str:
        total = sum(self.section_seconds.values())
        return f"GPU check {facts_line(self.facts)}; {total:.0f} s in all"

    def markdown(self) -> str:
        lines = [
            "| section | case | input | ms | images/s | peak MB | result | status |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            ms = "-" if row.seconds is None else f"{1000 * row.seconds:.1f}"
            speed = "-" if row.images_per_second is None else f"{row.images_per_second:.2f}"
            memory = "-" if row.peak_memory_mb is None else f"{row.peak_memory_mb:.0f}"
            result = row.result.replace("|", "/")
            lines.append(
                f"| {row.section} | {row.case} | {row.shape} | {ms} | {speed} | {memory} | {result} | {row.status} |"
            )
        times = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.section_seconds.items())
        return "\n".join([*lines, "", f"Time per section: {times}."])

    def write(self, output_dir: Path) -> tuple[Path, Path]:
        markdown, data = output_dir / "gpu_check.md", output_dir / "gpu_check.json"
        write_text_atomically(markdown, f"{self.header()}\n\n{self.markdown()}\n")
        write_json(
            data,
            {
                "facts": self.facts,
                "sizes": asdict(self.sizes),
                "rows": [asdict(row) for row in self.rows],
                "section_seconds": self.section_seconds,
            },
        )
        return markdown, data


def missing_row(section: Section, missing: list[str]) -> CheckRow:
    extras = sorted({EXTRAS.get(name, "train") for name in missing})
    install = f'pip install "ddrnet-hf[{",".join(extras)}]"'
    return CheckRow(section.name, "-", result=f"needs {', '.join(missing)} ({install})", status="skipped")


def run_gpu_check(
    device: torch.device,
    sizes: CheckSizes,
    output_dir: Path,
    work_dir: Path,
    sections: tuple[str, ...] = SECTION_NAMES,
    progress: Callable[[str], None] = print,
) -> GpuCheckReport:
    """Run the named `sections` in their order on `device` at `sizes`; synthetic data and runs go to `work_dir`,
    the training runs' logs and `errors.log` (the traceback of each section that broke) to `output_dir`."""
    from ..devices import supports_bfloat16

    context = CheckContext(device, sizes, work_dir, output_dir, supports_bfloat16(device))
    rows, seconds = [], {}
    for section in SECTIONS:
        if section.name not in sections:
            continue
        missing = missing_packages(section.requires)
        if missing:
            rows.append(missing_row(section, missing))
            progress(f"== {section.name}: skipped, {rows[-1].result}")
            continue
        progress(f"== {section.name}")
        start = time.perf_counter()
        try:
            rows += section.run(context)
        except Exception as error:  # a broken section is reported and the others still run
            rows.append(context.broken(section.name, "-", error))
        seconds[section.name] = time.perf_counter() - start
        progress(f"   {seconds[section.name]:.0f} s")
    if context.tracebacks:
        write_text_atomically(output_dir / "errors.log", "\n".join(context.tracebacks))
    return GpuCheckReport(device_facts(device), sizes, rows, seconds)
