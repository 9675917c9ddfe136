"""Mixed precision through the real entry points, `accelerate launch --mixed_precision ...` and the scripts' own
`--mixed_precision`, on the CPU: fp16 runs there as on a GPU (float16 autocast and a gradient scaler that starts at
2^16), bf16 as CPU autocast."""

from __future__ import annotations

import json
import math
import shutil
import signal

import numpy as np
import pytest
import torch
from conftest import TINY_TRAINING_ARGS, Run, run_script, tiny_config, train_command
from PIL import Image
from safetensors.torch import load_file

from ddrnet_toolkit.inference import predict_classes
from ddrnet_toolkit.training.tracking import read_logged_scalars
from modeling_ddrnet import DDRNetForSemanticSegmentation

# Enough steps for BatchNorm statistics that keep the eval-mode activations within float16's range.
STEPS = 24
MIDDLE = STEPS // 2
SCHEDULE = ("--max_train_steps", str(STEPS), "--eval_steps", str(STEPS), "--checkpointing_steps", str(MIDDLE))
LEARNING_RATE = 0.05
# Every run of this module: its precision comes from the script's flag (fp16) or from the launcher's (bf16).
HOW = {
    "no": ((), ()),
    "fp16": (("--mixed_precision", "fp16", "--max_nonfinite_steps", "1"), ()),
    "bf16": ((), ("--mixed_precision", "bf16")),
}
INITIAL_LOSS_SCALE = 2.0**16
# Pixels whose label may change under autocast on the trained tiny model (measured: 0.07% fp16, 0.8% bf16).
LABEL_DISAGREEMENT_BOUND = {"fp16": 0.005, "bf16": 0.03}
MEAN_IOU_BOUND = 0.01


def train(synthetic_root, model_dir, output_dir, *extra, launch_args=()):
    args = ["--model_name_or_path", str(model_dir), "--data_dir", str(synthetic_root), "--output_dir", str(output_dir)]
    args += ["--cache_dir", str(output_dir.parent / "cache"), *TINY_TRAINING_ARGS, *extra]
    return run_script("train.py", *args, config="cpu.yaml", launch_args=launch_args)


@pytest.fixture(scope="module")
def runs(synthetic_root, tiny_model_dir, tmp_path_factory) -> dict:
    """One finished run per precision, from the same model and seed: name -> (output folder, log)."""
    root = tmp_path_factory.mktemp("precision")
    finished = {}
    for name, (flags, launch_args) in HOW.items():
        extra = (*SCHEDULE, "--learning_rate", str(LEARNING_RATE), *flags)
        result = train(synthetic_root, tiny_model_dir, root / name, *extra, launch_args=launch_args)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        finished[name] = (root / name, result.stdout + result.stderr)
    return finished


def final_checkpoint(output_dir):
    return output_dir / "checkpoints" / f"step_{STEPS:08d}"


def parameter_names() -> set[str]:
    return {name for name, _ in DDRNetForSemanticSegmentation(tiny_config()).named_parameters()}


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_mixed_precision_trains_with_finite_losses_and_saves_a_loadable_fp32_model(runs, precision):
    output_dir, log = runs[precision]
    assert f"mixed precision {precision}" in log
    losses = [value for _, value in read_logged_scalars(output_dir / "logs")["train/loss"]]
    assert len(losses) == STEPS and all(math.isfinite(loss) for loss in losses)
    model = DDRNetForSemanticSegmentation.from_pretrained(output_dir / "last_model")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    saved = load_file(output_dir / "last_model" / "model.safetensors")
    assert {value.dtype for value in saved.values() if value.is_floating_point()} == {torch.float32}
    # The precision really ran: the weights are not those of the fp32 run.
    fp32 = load_file(runs["no"][0] / "last_model" / "model.safetensors")
    assert saved.keys() == fp32.keys()
    assert any(not torch.equal(saved[name], fp32[name]) for name in parameter_names())
    # Only fp16 has a gradient scaler, and its state is in every checkpoint.
    assert (final_checkpoint(output_dir) / "scaler.pt").is_file() == (precision == "fp16")


@pytest.mark.slow
def test_fp16_calibration_skips_are_counted_once_never_stop_a_run_and_keep_the_schedule(runs):
    output_dir, log = runs["fp16"]
    scale = torch.load(final_checkpoint(output_dir) / "scaler.pt", weights_only=True)["scale"]
    skipped = json.loads((final_checkpoint(output_dir) / "trainer_state.json").read_text())["skipped_steps"]
    # Each skipped step halved the scale once (growth needs 2000 clean steps), and was counted once; with
    # --max_nonfinite_steps 1 the run still finished.
    assert skipped >= 1 and skipped == round(math.log2(INITIAL_LOSS_SCALE / scale))
    assert "whose fp16 gradients overflowed" in log and "non-finite loss or gradients" not in log
    scalars = read_logged_scalars(output_dir / "logs")
    assert scalars["train/skipped_steps"][-1] == (STEPS, skipped)
    # The learning rate follows the step count, skipped steps included: the poly schedule of the run's length.
    for step, learning_rate in scalars["train/learning_rate"]:
        assert learning_rate == pytest.approx(LEARNING_RATE * (1 - step / STEPS) ** 0.9, rel=1e-6, abs=1e-9)


@pytest.mark.slow
def test_a_forced_overflow_skips_the_step_and_counts_it_once(runs, synthetic_root, tiny_model_dir, tmp_path):
    source, _ = runs["fp16"]
    middle = source / "checkpoints" / f"step_{MIDDLE:08d}"
    resumed = tmp_path / "run"
    shutil.copytree(middle, resumed / "checkpoints" / middle.name)
    scaler_file = resumed / "checkpoints" / middle.name / "scaler.pt"
    scaler = torch.load(scaler_file, weights_only=True)
    scaler["scale"] = 2.0**60  # every scaled gradient overflows float16
    torch.save(scaler, scaler_file)
    before = json.loads((middle / "trainer_state.json").read_text())["skipped_steps"]
    flags, _ = HOW["fp16"]
    extra = (*SCHEDULE, "--learning_rate", str(LEARNING_RATE), *flags, "--resume_from_checkpoint", "latest")
    result = train(synthetic_root, tiny_model_dir, resumed, *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    end = final_checkpoint(resumed)
    assert json.loads((end / "trainer_state.json").read_text())["skipped_steps"] == before + STEPS - MIDDLE
    assert torch.load(end / "scaler.pt", weights_only=True)["scale"] == 2.0 ** (60 - (STEPS - MIDDLE))
    # No step changed the weights (BatchNorm statistics still follow the batches).
    start, finish = load_file(middle / "model.safetensors"), load_file(end / "model.safetensors")
    assert all(torch.equal(start[name], finish[name]) for name in parameter_names())


@pytest.fixture(scope="module")
def overflowing_model(tiny_model_dir, tmp_path_factory):
    """Finite weights whose logits overflow float16 (over 65504): every output under fp16 autocast is NaN."""
    model = DDRNetForSemanticSegmentation.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.decode_head.conv2.weight.mul_(1e6)
    path = tmp_path_factory.mktemp("overflowing_model")
    model.save_pretrained(path)
    return path


@pytest.mark.slow
def test_max_nonfinite_steps_stops_an_fp16_run_whose_every_step_is_non_finite(
    synthetic_root, overflowing_model, tmp_path
):
    extra = (*SCHEDULE, "--mixed_precision", "fp16", "--max_nonfinite_steps", "3")
    result = run_script(
        "train.py",
        *("--model_name_or_path", str(overflowing_model), "--data_dir", str(synthetic_root)),
        *("--output_dir", str(tmp_path / "out"), "--cache_dir", str(tmp_path / "cache"), *TINY_TRAINING_ARGS),
        *extra,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "error: Stopped at step 3: 3 consecutive steps had non-finite loss or gradients" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "last_model").exists() and not (tmp_path / "out" / "best_model").exists()


@pytest.mark.slow
def test_fp16_channels_last_sigkill_then_resume_is_bit_exact_scaler_included(synthetic_root, tiny_model_dir, tmp_path):
    schedule = ("--max_train_steps", "12", "--checkpointing_steps", "3", "--logging_steps", "3")
    precision = ("--mixed_precision", "fp16", "--channels_last")
    reference = tmp_path / "reference"
    command = train_command(synthetic_root, tiny_model_dir, reference, *schedule, *precision)
    code, output = Run(command, tmp_path / "a.log").finish()
    assert code == 0, output[-3000:]

    killed = tmp_path / "killed"
    run = Run(train_command(synthetic_root, tiny_model_dir, killed, *schedule, *precision), tmp_path / "b.log")
    run.wait_for(lambda: (killed / "checkpoints" / "step_00000006").is_dir())
    run.signal(signal.SIGKILL)
    run.finish()
    assert not (killed / "checkpoints" / "step_00000012").exists()
    resume = ("--resume_from_checkpoint", "latest")
    code, output = Run(
        train_command(synthetic_root, tiny_model_dir, killed, *schedule, *precision, *resume), tmp_path / "c.log"
    ).finish()
    assert code == 0, output[-3000:]
    assert "Resumed from" in output

    expected, actual = reference / "checkpoints" / "step_00000012", killed / "checkpoints" / "step_00000012"
    expected_weights, actual_weights = (
        load_file(expected / "model.safetensors"),
        load_file(actual / "model.safetensors"),
    )
    assert expected_weights.keys() == actual_weights.keys()
    assert all(torch.equal(expected_weights[key], actual_weights[key]) for key in expected_weights)
    expected_scaler = torch.load(expected / "scaler.pt", weights_only=True)
    assert expected_scaler == torch.load(actual / "scaler.pt", weights_only=True)
    assert expected_scaler["scale"] < INITIAL_LOSS_SCALE  # the run did skip steps
    assert (expected / "trainer_state.json").read_text() == (actual / "trainer_state.json").read_text()


@pytest.mark.slow
def test_compile_with_fp16_and_channels_last_traces_once(synthetic_root, tiny_model_dir, tmp_path, monkeypatch):
    # The eager backend runs dynamo's tracing, where recompilations arise, without inductor's code generation, which
    # takes minutes on this CPU (the GPU check compiles with inductor). Every recompilation is logged.
    monkeypatch.setenv("TORCH_LOGS", "recompiles")
    extra = ("--max_train_steps", "3", "--eval_steps", "3", "--mixed_precision", "fp16", "--channels_last")
    result = train(synthetic_root, tiny_model_dir, tmp_path / "run", *extra, "--compile", "--compile_backend", "eager")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "__recompiles" not in result.stderr, result.stderr[-3000:]  # not on later steps, nor to evaluate
    losses = [value for _, value in read_logged_scalars(tmp_path / "run" / "logs")["train/loss"]]
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
    model = DDRNetForSemanticSegmentation.from_pretrained(tmp_path / "run" / "last_model")
    assert not any(name.startswith("_orig_mod") for name in model.state_dict())


def validation_images(synthetic_root) -> np.ndarray:
    paths = sorted((synthetic_root / "leftImg8bit" / "val").glob("*/*.png"))
    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in paths])


def evaluate(model_dir, synthetic_root, output_file, precision: str):
    """eval.py, fp16 from its own flag, bf16 from the launcher's."""
    arguments = ["--model_name_or_path", str(model_dir), "--data_dir", str(synthetic_root), "--num_workers", "0"]
    arguments += ["--cache_dir", str(output_file.parent / "cache"), "--output_file", str(output_file)]
    if precision == "fp16":
        return run_script("eval.py", *arguments, "--mixed_precision", "fp16")
    return run_script("eval.py", *arguments, config="cpu.yaml", launch_args=("--mixed_precision", precision))


@pytest.mark.slow
def test_evaluation_and_prediction_under_autocast_give_the_labels_of_fp32(runs, synthetic_root, tmp_path):
    trained = runs["no"][0] / "last_model"
    reference = json.loads((trained / "eval_results.json").read_text())  # the run's own evaluation, in fp32
    for precision in ("fp16", "bf16"):
        result = evaluate(trained, synthetic_root, tmp_path / f"{precision}.json", precision)
        assert result.returncode == 0, result.stderr[-3000:]
        scores = json.loads((tmp_path / f"{precision}.json").read_text())
        assert abs(scores["mean_iou"] - reference["mean_iou"]) <= MEAN_IOU_BOUND, precision
        per_class = reference["per_category_iou"]
        changes = [abs((value or 0) - (per_class[name] or 0)) for name, value in scores["per_category_iou"].items()]
        assert max(changes) <= 2 * MEAN_IOU_BOUND, (precision, changes)

    model = DDRNetForSemanticSegmentation.from_pretrained(trained).eval()
    images = validation_images(synthetic_root)
    labels = predict_classes(model, images)
    assert len(np.unique(labels)) > 1  # a model that predicts something
    for precision, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        with torch.autocast("cpu", dtype=dtype):
            changed = (predict_classes(model, images) != labels).mean()
        assert changed <= LABEL_DISAGREEMENT_BOUND[precision], (precision, changed)


@pytest.mark.slow
def test_evaluation_refuses_to_score_outputs_that_overflow_float16(overflowing_model, synthetic_root, tmp_path):
    result = evaluate(overflowing_model, synthetic_root, tmp_path / "fp16.json", "fp16")
    assert result.returncode == 1
    assert "3 evaluated image(s) got NaN or infinite class probabilities" in result.stderr
    assert "under fp16 autocast, float16's 65504" in result.stderr and not (tmp_path / "fp16.json").exists()
