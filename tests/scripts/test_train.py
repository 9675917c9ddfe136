"""End-to-end runs of scripts/train.py and scripts/eval.py through `accelerate launch` on tiny synthetic data."""

from __future__ import annotations

import json
import shutil
import signal

import evaluate
import numpy as np
import pytest
import torch
from conftest import (
    REPO_ROOT,
    TINY_TRAINING_ARGS,
    Run,
    check_evaluation_equals_one_process,
    load_script,
    run_script,
    tiny_config,
    train_command,
)
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dataset_builders.cityscapes import load_cityscapes
from ddrnet_toolkit import MEAN_IOU_METRIC_PATH
from ddrnet_toolkit.data import EvalDataset, normalize_on_device
from ddrnet_toolkit.errors import UserInputError
from ddrnet_toolkit.inference import predict_probabilities
from ddrnet_toolkit.training.checkpointing import find_latest_checkpoint
from modeling_ddrnet import DDRNetForSemanticSegmentation


def train(synthetic_root, tiny_model_dir, output_dir, *extra, config="cpu.yaml"):
    args = ["--model_name_or_path", str(tiny_model_dir), "--data_dir", str(synthetic_root)]
    args += ["--output_dir", str(output_dir), "--cache_dir", str(output_dir.parent / "cache"), *TINY_TRAINING_ARGS]
    result = run_script("train.py", *args, *extra, config=config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def finished_run(synthetic_root, tiny_model_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("train") / "run"
    extra = ("--max_train_steps", "6", "--eval_steps", "3", "--checkpointing_steps", "3")
    result = train(synthetic_root, tiny_model_dir, output_dir, *extra)
    return output_dir, result


def scalar_and_image_tags(log_dir):
    tags = {"scalars": set(), "images": set()}
    for events in log_dir.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags["scalars"] |= set(accumulator.Tags()["scalars"])
        tags["images"] |= set(accumulator.Tags()["images"])
    return tags


def test_training_writes_models_checkpoints_and_tensorboard(finished_run):
    output_dir, result = finished_run
    for folder in (output_dir / "last_model", output_dir / "best_model"):
        assert folder.is_symlink()  # swapped atomically to a complete version
        assert {"model.safetensors", "config.json", "preprocessor_config.json", "eval_results.json"} <= {
            p.name for p in folder.iterdir()
        }
    # One complete version per model folder; earlier versions are removed after each swap.
    assert len(list((output_dir / ".model_versions").iterdir())) == 2
    assert sorted(p.name for p in (output_dir / "checkpoints").iterdir()) == ["step_00000003", "step_00000006"]
    results = json.loads((output_dir / "last_model" / "eval_results.json").read_text())
    assert results["step"] == 6 and 0 <= results["mean_iou"] <= 1
    assert set(results["per_category_iou"]) >= {"road", "car", "sky"}
    tags = scalar_and_image_tags(output_dir / "logs")
    assert {
        "train/loss",
        "train/main_loss",
        "train/aux_loss",
        "train/learning_rate",
        "train/images_per_second",
    } <= tags["scalars"]
    assert {"eval/mean_iou", "eval/mean_accuracy", "eval/overall_accuracy", "eval_iou/road"} <= tags["scalars"]
    assert "eval_images/0" in tags["images"]
    assert "effective batch size 2" in result.stderr + result.stdout
    model = DDRNetForSemanticSegmentation.from_pretrained(output_dir / "last_model")
    assert model.config.class_weights[0] == pytest.approx(0.8373)
    # Models are stored as safetensors only.
    for folder in (output_dir / "last_model", output_dir / "best_model"):
        assert not [p.name for p in folder.iterdir() if p.suffix in {".bin", ".pt", ".pth", ".pkl"}]


@pytest.mark.slow
def test_resume_continues_at_the_same_step_and_learning_rate(finished_run, synthetic_root, tiny_model_dir, tmp_path):
    output_dir, _ = finished_run
    resumed = tmp_path / "run"
    shutil.copytree(output_dir / "checkpoints", resumed / "checkpoints")
    shutil.rmtree(resumed / "checkpoints" / "step_00000006")
    extra = ("--max_train_steps", "6", "--eval_steps", "3", "--checkpointing_steps", "3")
    result = train(synthetic_root, tiny_model_dir, resumed, *extra, "--resume_from_checkpoint", "latest")
    expected_lr = 0.01 * (1 - 3 / 6) ** 0.9
    assert f"at step 3, lr {expected_lr:.6g}" in result.stderr
    uninterrupted = load_file(output_dir / "checkpoints" / "step_00000006" / "model.safetensors")
    continued = load_file(resumed / "checkpoints" / "step_00000006" / "model.safetensors")
    for key, value in uninterrupted.items():
        torch.testing.assert_close(continued[key], value, rtol=0, atol=0, msg=key)


@pytest.mark.slow
def test_two_process_training_writes_once(synthetic_root, tiny_model_dir, tmp_path):
    output_dir = tmp_path / "ddp"
    extra = ("--max_train_steps", "2", "--eval_steps", "2", "--checkpointing_steps", "2")
    result = train(synthetic_root, tiny_model_dir, output_dir, *extra, config="multi_cpu.yaml")
    assert "2 processes" in result.stderr
    assert "Weights identical on all 2 processes" in result.stderr
    assert [p.name for p in (output_dir / "checkpoints").iterdir()] == ["step_00000002"]
    assert len(list((output_dir / "logs").rglob("events.out.tfevents.*"))) >= 1
    assert (output_dir / "last_model" / "model.safetensors").is_file()
    check_evaluation_equals_one_process(output_dir, synthetic_root, tmp_path)


@pytest.mark.slow
def test_eval_script_is_the_same_on_one_and_two_processes_and_equals_the_module(
    synthetic_root, tiny_model_dir, tmp_path
):
    common = ["--model_name_or_path", str(tiny_model_dir), "--data_dir", str(synthetic_root)]
    common += ["--cache_dir", str(tmp_path / "cache"), "--num_workers", "0"]
    single = run_script("eval.py", *common, "--output_file", str(tmp_path / "one.json"))
    assert single.returncode == 0, single.stderr[-3000:]
    assert "road" in single.stdout and "mean" in single.stdout
    double = run_script("eval.py", *common, "--output_file", str(tmp_path / "two.json"), config="multi_cpu.yaml")
    assert double.returncode == 0, double.stderr[-3000:]
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert one["mean_iou"] == two["mean_iou"] and one["per_category_iou"] == two["per_category_iou"]

    # The same predictions scored by the evaluate module.
    model = DDRNetForSemanticSegmentation.from_pretrained(tiny_model_dir).eval()
    split = load_cityscapes(synthetic_root, cache_dir=tmp_path / "cache")["validation"]
    predictions, references = [], []
    for sample in EvalDataset(split):
        pixel_values, _ = normalize_on_device({key: value[None] for key, value in sample.items()})
        probabilities = predict_probabilities(model, pixel_values)
        predictions.append(probabilities.argmax(1)[0].numpy().astype(np.uint8))
        references.append(sample["labels"].numpy())
    metric = evaluate.load(MEAN_IOU_METRIC_PATH)
    expected = metric.compute(predictions=predictions, references=references, num_labels=19, ignore_index=255)
    assert one["mean_iou"] == pytest.approx(expected["mean_iou"], abs=1e-12)


def test_eval_script_rejects_an_unlabelled_split(synthetic_root, tiny_model_dir, tmp_path):
    result = run_script(
        "eval.py",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--data_dir",
        str(synthetic_root),
        "--cache_dir",
        str(tmp_path / "cache"),
        "--split",
        "test",
    )
    assert result.returncode == 1 and "not a labelled split" in result.stderr


PLUS_RECIPE = str(REPO_ROOT / "configs" / "recipes" / "cityscapes-plus.yaml")
# The plus recipe scaled down to 6 steps: a decay whose average moves within the run, and a 2-step warmup.
PLUS_OVERRIDES = ("--config", PLUS_RECIPE, "--ema_decay", "0.9", "--warmup_steps", "2")
SIX_STEPS = ("--max_train_steps", "6", "--eval_steps", "3", "--checkpointing_steps", "3")


def resume_from_step_3(output_dir, synthetic_root, tiny_model_dir, tmp_path, *extra):
    """Resume a finished 6-step run from its step-3 checkpoint with the same options (`extra` beyond SIX_STEPS),
    check that its step-6 weights equal the uninterrupted run's bit for bit, and return the resumed run's folder."""
    resumed = tmp_path / "run"
    shutil.copytree(output_dir / "checkpoints", resumed / "checkpoints")
    shutil.rmtree(resumed / "checkpoints" / "step_00000006")
    train(synthetic_root, tiny_model_dir, resumed, *extra, *SIX_STEPS, "--resume_from_checkpoint", "latest")
    uninterrupted = load_file(output_dir / "checkpoints" / "step_00000006" / "model.safetensors")
    continued = load_file(resumed / "checkpoints" / "step_00000006" / "model.safetensors")
    assert all(torch.equal(continued[key], value) for key, value in uninterrupted.items())
    return resumed


@pytest.fixture(scope="module")
def plus_run(synthetic_root, tiny_model_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("plus") / "run"
    result = train(synthetic_root, tiny_model_dir, output_dir, *PLUS_OVERRIDES, *SIX_STEPS)
    return output_dir, result


def test_the_plus_recipe_publishes_the_average_of_the_weights_and_records_its_configuration(plus_run):
    output_dir, result = plus_run
    checkpoint = output_dir / "checkpoints" / "step_00000006"
    average = torch.load(checkpoint / "custom_checkpoint_1.pkl", weights_only=True)
    assert average["num_updates"] == 6 and average["decay"] == 0.9
    published = load_file(output_dir / "last_model" / "model.safetensors")
    trained = load_file(checkpoint / "model.safetensors")
    for key, value in published.items():
        assert torch.equal(value, average["weights"][key]), key
    assert any(not torch.equal(value, trained[key]) for key, value in published.items())
    # The run's resolved options replay it; the model card's record names the recipe and the techniques.
    replayed = load_script("train").parse_args(["--config", str(output_dir / "train_config.yaml")])
    assert (replayed.learning_rate, replayed.head_lr_multiplier, replayed.ema_decay) == (0.0075, 10.0, 0.9)
    assert (replayed.crop_size, replayed.max_train_steps, replayed.output_dir) == ([64, 64], 6, str(output_dir))
    record = json.loads((output_dir / "last_model" / "training_args.json").read_text())
    assert record["recipe"] == PLUS_RECIPE and record["rare_class_probability"] == 0.5
    assert record["color_jitter"] == 0.5 and record["warmup_steps"] == 2
    assert {"train/learning_rate", "train/learning_rate_heads"} <= scalar_and_image_tags(output_dir / "logs")["scalars"]
    assert "step 1/6 epoch 0" in result.stderr and "lr 0.004125" in result.stderr  # 0.0075 x (0.1 + 0.9 x 1 / 2)


@pytest.mark.slow
def test_resume_with_the_average_of_the_weights_is_bit_exact(plus_run, synthetic_root, tiny_model_dir, tmp_path):
    output_dir, _ = plus_run
    resumed = resume_from_step_3(output_dir, synthetic_root, tiny_model_dir, tmp_path, *PLUS_OVERRIDES)
    uninterrupted = torch.load(output_dir / "checkpoints" / "step_00000006" / "custom_checkpoint_1.pkl")
    continued = torch.load(resumed / "checkpoints" / "step_00000006" / "custom_checkpoint_1.pkl")
    assert continued["num_updates"] == uninterrupted["num_updates"] == 6
    for key, value in uninterrupted["weights"].items():
        assert torch.equal(continued["weights"][key], value), key

    # Another decay cannot continue this average.
    other = tmp_path / "other"
    shutil.copytree(output_dir / "checkpoints", other / "checkpoints")
    args = ["--model_name_or_path", str(tiny_model_dir), "--data_dir", str(synthetic_root), "--output_dir", str(other)]
    args += ["--cache_dir", str(tmp_path / "cache"), *TINY_TRAINING_ARGS, *SIX_STEPS, "--resume_from_checkpoint"]
    result = run_script("train.py", *args, "latest", *PLUS_OVERRIDES, "--ema_decay", "0.5")
    assert result.returncode == 1
    assert "was trained with --ema_decay 0.9, this run has 0.5" in result.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A tiny teacher twice the student's width (any variant may teach), with the student's classes."""
    path = tmp_path_factory.mktemp("teacher")
    torch.manual_seed(1)
    DDRNetForSemanticSegmentation(tiny_config(base_channels=16, head_channels=32)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def distilled_run(synthetic_root, tiny_model_dir, teacher_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("distilled") / "run"
    teacher = ("--teacher_model_name_or_path", str(teacher_dir), "--loss", "dice_ce_edge")
    result = train(synthetic_root, tiny_model_dir, output_dir, *teacher, *SIX_STEPS, "--logging_steps", "3")
    return output_dir, result, teacher


def test_distillation_logs_its_term_records_the_teacher_and_saves_only_the_student(
    distilled_run, teacher_dir, tiny_model_dir
):
    output_dir, result, _ = distilled_run
    assert f"Teacher: {teacher_dir} (channel-wise distillation, weight 6, temperature 3)" in result.stderr
    assert "step 3/6 epoch" in result.stderr and ", distillation " in result.stderr
    assert "train/distillation_loss" in scalar_and_image_tags(output_dir / "logs")["scalars"]
    record = json.loads((output_dir / "last_model" / "training_args.json").read_text())
    assert record["teacher_model_name_or_path"] == str(teacher_dir) and record["loss"] == "dice_ce_edge"
    assert (record["distillation"], record["distillation_weight"], record["distillation_temperature"]) == (
        "channel",
        6.0,
        3.0,
    )
    assert json.loads((output_dir / "last_model" / "config.json").read_text())["loss_type"] == "dice_ce_edge"
    # The checkpoint and the model hold the student alone: its tensors, at its width.
    student = load_file(tiny_model_dir / "model.safetensors")
    for saved in (output_dir / "checkpoints" / "step_00000006" / "model.safetensors", output_dir / "last_model"):
        weights = load_file(saved if saved.suffix else saved / "model.safetensors")
        assert {key: value.shape for key, value in weights.items()} == {k: v.shape for k, v in student.items()}


@pytest.mark.slow
def test_resume_with_a_teacher_is_bit_exact(distilled_run, synthetic_root, tiny_model_dir, tmp_path):
    output_dir, _, teacher = distilled_run
    resume_from_step_3(output_dir, synthetic_root, tiny_model_dir, tmp_path, *teacher)


def test_a_teacher_of_other_classes_stops_the_run_before_it_starts(synthetic_root, tiny_model_dir, tmp_path):
    teacher = tmp_path / "teacher"
    labels = {"id2label": {0: "road", 1: "car", 2: "sky"}, "label2id": {"road": 0, "car": 1, "sky": 2}}
    DDRNetForSemanticSegmentation(tiny_config(**labels)).save_pretrained(teacher)
    output_dir = tmp_path / "run"
    args = ["--model_name_or_path", str(tiny_model_dir), "--data_dir", str(synthetic_root), "--output_dir"]
    args += [str(output_dir), "--cache_dir", str(tmp_path / "cache"), *TINY_TRAINING_ARGS, *SIX_STEPS]
    result = run_script("train.py", *args, "--teacher_model_name_or_path", str(teacher))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: --teacher_model_name_or_path {teacher}: the teacher's 3 classes (road, car, sky")
    assert "are not the student's 19" in last
    assert not (output_dir / "checkpoints").exists() or not any((output_dir / "checkpoints").iterdir())


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_ends_with_the_uninterrupted_weights(synthetic_root, tiny_model_dir, tmp_path):
    schedule = ("--max_train_steps", "12", "--checkpointing_steps", "3", "--logging_steps", "3")
    reference = tmp_path / "reference"
    code, output = Run(train_command(synthetic_root, tiny_model_dir, reference, *schedule), tmp_path / "a.log").finish()
    assert code == 0, output[-3000:]

    killed = tmp_path / "killed"
    run = Run(train_command(synthetic_root, tiny_model_dir, killed, *schedule), tmp_path / "b.log")
    run.wait_for(lambda: (killed / "checkpoints" / "step_00000006").is_dir())
    run.signal(signal.SIGKILL)
    run.finish()
    assert not (killed / "checkpoints" / "step_00000012").exists()

    command = train_command(synthetic_root, tiny_model_dir, killed, *schedule, "--resume_from_checkpoint", "latest")
    code, output = Run(command, tmp_path / "c.log").finish()
    assert code == 0, output[-3000:]
    assert "Resumed from" in output
    expected = load_file(reference / "checkpoints" / "step_00000012" / "model.safetensors")
    actual = load_file(killed / "checkpoints" / "step_00000012" / "model.safetensors")
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(synthetic_root, tiny_model_dir, tmp_path):
    output_dir = tmp_path / "preempted"
    command = train_command(
        synthetic_root, tiny_model_dir, output_dir, "--max_train_steps", "500", "--checkpointing_steps", "1000"
    )
    run = Run(command, tmp_path / "run.log")
    run.wait_for(lambda: "step 3/500" in run.output())
    run.signal(signal.SIGTERM)
    code, output = run.finish()
    assert code == 0, output[-3000:]
    assert "Received signal 15: checkpoint saved at step" in output
    step = int(output.split("checkpoint saved at step ")[1].split()[0])
    assert 3 <= step < 500
    assert find_latest_checkpoint(output_dir / "checkpoints").name == f"step_{step:08d}"


def load_train_module():
    return load_script("train")


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be at least 1"),
        (["--crop_size", "5000", "5000"], "larger than the largest scaled image"),
        (["--scale_range", "2", "1"], "--scale_range must satisfy"),
        (["--learning_rate", "nan"], "--learning_rate must be a positive number"),
    ],
)
def test_bad_training_arguments_are_parser_errors(synthetic_root, tmp_path, capsys, arguments, message):
    train = load_train_module()
    base = ["--data_dir", str(synthetic_root), "--output_dir", str(tmp_path / "out"), "--report_to", "none"]
    with pytest.raises(SystemExit) as exit_info:
        train.main([*base, *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_batch_of_one_is_refused_naming_the_argument(synthetic_root, tmp_path):
    train = load_train_module()
    arguments = ["--data_dir", str(synthetic_root), "--output_dir", str(tmp_path / "out"), "--report_to", "none"]
    with pytest.raises(UserInputError, match="--per_device_train_batch_size 1 .* at least 2 samples"):
        train.main([*arguments, "--cache_dir", str(tmp_path / "cache"), "--per_device_train_batch_size", "1"])


def test_unknown_variant_and_unwritable_output_dir(synthetic_root, tmp_path, capsys):
    train = load_train_module()
    with pytest.raises(SystemExit):
        train.main(["--variant", "ddrnet-50", "--data_dir", str(synthetic_root), "--output_dir", str(tmp_path)])
    assert "invalid choice: 'ddrnet-50'" in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(UserInputError, match="--output_dir .*a_file/out cannot be written"):
        train.main(["--data_dir", str(synthetic_root), "--output_dir", str(blocker / "out")])


def test_checkpoint_with_another_number_of_labels(synthetic_root, tmp_path):
    five = tmp_path / "five_labels"
    DDRNetForSemanticSegmentation(tiny_config(num_labels=5)).save_pretrained(five)
    train = load_train_module()
    base = [
        "--model_name_or_path",
        str(five),
        "--data_dir",
        str(synthetic_root),
        "--report_to",
        "none",
        "--cache_dir",
        str(tmp_path / "cache"),
        *TINY_TRAINING_ARGS,
        "--eval_split",
        "none",
    ]
    with pytest.raises(
        UserInputError, match="predicts 5 classes but cityscapes has 19; pass --ignore_mismatched_sizes"
    ):
        train.main([*base, "--output_dir", str(tmp_path / "refused")])
    assert (
        train.main([*base, "--output_dir", str(tmp_path / "ok"), "--ignore_mismatched_sizes", "--max_train_steps", "1"])
        == 0
    )
    assert DDRNetForSemanticSegmentation.from_pretrained(tmp_path / "ok" / "last_model").config.num_labels == 19
