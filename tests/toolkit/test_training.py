"""The training subpackage: schedule and optimizer, the average of the weights, non-finite guards, checkpoints,
recipes (`--config`: precedence, errors, round trip)."""

from __future__ import annotations

import argparse
import math
import os
from types import SimpleNamespace
from unittest.mock import patch

import pytest
import torch
import yaml
from accelerate import Accelerator, PartialState
from conftest import REPO_ROOT, load_script, tiny_config

from ddrnet_toolkit.errors import UserInputError
from ddrnet_toolkit.model_folder import class_names
from ddrnet_toolkit.training.accelerator import check_distributed_setup, prepare_model_layout
from ddrnet_toolkit.training.checkpointing import find_latest_checkpoint, resolve_checkpoint
from ddrnet_toolkit.training.distillation import (
    DEFAULT_WEIGHTS,
    DISTILLATION_MODES,
    Teacher,
    channel_distillation_loss,
    load_teacher,
    pixel_distillation_loss,
)
from ddrnet_toolkit.training.guards import NonFiniteGuard, TrainingDiverged
from ddrnet_toolkit.training.optimization import head_parameters, poly_schedule, sgd_with_momentum_buffers
from ddrnet_toolkit.training.plan import TrainingPlan
from ddrnet_toolkit.training.recipes import read_recipe, resolved_recipe, write_recipe
from ddrnet_toolkit.training.weight_averaging import WeightAverage
from modeling_ddrnet import DDRNetConfig, DDRNetForSemanticSegmentation


def test_latest_skips_incomplete_checkpoints(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    for name, complete in (("step_00000003", True), ("step_00000009", False), ("step_00000006.tmp", True)):
        (checkpoints / name).mkdir(parents=True)
        (checkpoints / name / "model.safetensors").write_bytes(b"partial")
        if complete:
            (checkpoints / name / "trainer_state.json").write_text("{}")
    assert find_latest_checkpoint(checkpoints).name == "step_00000003"
    assert resolve_checkpoint("latest", checkpoints).name == "step_00000003"
    with pytest.raises(UserInputError, match="not a complete checkpoint"):
        resolve_checkpoint(str(checkpoints / "step_00000009"), checkpoints)
    assert resolve_checkpoint("latest", tmp_path / "none") is None


def test_nonfinite_steps_are_skipped_on_the_device_and_then_stop_the_run():
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = DDRNetForSemanticSegmentation(tiny_config())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, fused=True)
    for parameter in model.parameters():
        optimizer.state[parameter]["momentum_buffer"] = torch.zeros_like(parameter)
    guard = NonFiniteGuard(accelerator, optimizer, max_consecutive=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def step(finite: bool) -> None:
        for parameter in model.parameters():
            parameter.grad = torch.ones_like(parameter)
        if not finite:
            next(model.parameters()).grad[0] = float("nan")
        guard.check_gradients(model)
        optimizer.step()

    for _ in range(2):
        step(finite=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    guard.raise_if_diverged(step=2)  # two in a row: a warning only
    step(finite=True)
    assert not torch.equal(before["decode_head.conv2.bias"], model.decode_head.conv2.bias)
    for _ in range(3):
        step(finite=False)
    with pytest.raises(TrainingDiverged, match="3 consecutive steps had non-finite"):
        guard.raise_if_diverged(step=6)


class InjectedScaler:
    """The part of a gradient scaler the guard reads: its current scale, on the device."""

    def __init__(self, scale: float):
        self.scale = torch.tensor(scale)

    def _get_scale_async(self) -> torch.Tensor:
        return self.scale

    def get_scale(self) -> float:
        return float(self.scale)


def fp16_guard(scale: float, max_consecutive: int) -> tuple[NonFiniteGuard, InjectedScaler, torch.nn.Module]:
    """A guard as train.py builds it under fp16 (the scaler skips the steps; the guard counts), the decision of
    whether the scale still calibrates injected through the scaler's scale."""
    scaler = InjectedScaler(scale)
    accelerator = SimpleNamespace(scaler=scaler, device=torch.device("cpu"), reduce=lambda tensor, reduction: tensor)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return NonFiniteGuard(accelerator, optimizer, max_consecutive), scaler, model


def fp16_step(guard: NonFiniteGuard, model: torch.nn.Module, loss: float, gradients_finite: bool) -> None:
    guard.note_loss(torch.tensor(loss))
    for parameter in model.parameters():
        parameter.grad = torch.ones_like(parameter) * (1.0 if gradients_finite else float("inf"))
    guard.check_gradients(model)


def test_fp16_calibration_skips_are_counted_but_never_stop_a_run():
    guard, scaler, model = fp16_guard(scale=2.0**16, max_consecutive=1)
    for _ in range(5):  # overflowing scaled gradients of finite losses: the scaler halves its scale each time
        fp16_step(guard, model, loss=2.5, gradients_finite=False)
        scaler.scale /= 2
    guard.raise_if_diverged(step=5)
    assert guard.skipped_steps() == 5
    # A non-finite loss counts, and the calibration steps around it neither end nor extend its streak.
    guard, scaler, model = fp16_guard(scale=2.0**16, max_consecutive=2)
    fp16_step(guard, model, loss=float("nan"), gradients_finite=False)
    fp16_step(guard, model, loss=2.5, gradients_finite=False)
    guard.raise_if_diverged(step=2)
    fp16_step(guard, model, loss=float("inf"), gradients_finite=False)
    with pytest.raises(TrainingDiverged, match="2 consecutive steps"):
        guard.raise_if_diverged(step=3)
    assert guard.skipped_steps() == 3


def test_fp16_overflows_at_a_scale_of_one_or_less_count_and_a_finite_step_ends_a_streak():
    guard, _, model = fp16_guard(scale=1.0, max_consecutive=2)
    fp16_step(guard, model, loss=2.5, gradients_finite=False)
    fp16_step(guard, model, loss=2.5, gradients_finite=True)
    fp16_step(guard, model, loss=2.5, gradients_finite=False)
    guard.raise_if_diverged(step=3)  # 1 in a row
    fp16_step(guard, model, loss=2.5, gradients_finite=False)
    with pytest.raises(TrainingDiverged, match="2 consecutive steps"):
        guard.raise_if_diverged(step=4)


def test_a_resumed_guard_continues_the_count_of_skipped_steps():
    accelerator = SimpleNamespace(scaler=None, device=torch.device("cpu"), reduce=lambda tensor, reduction: tensor)
    model = torch.nn.Linear(2, 2)
    guard = NonFiniteGuard(accelerator, torch.optim.SGD(model.parameters(), lr=0.1), 3, skipped_before=4)
    fp16_step(guard, model, loss=1.0, gradients_finite=False)
    assert guard.skipped_steps() == 5


def test_several_gpus_synchronize_batch_norm_and_allow_a_batch_of_one():
    PartialState(cpu=True)  # accelerate's logging needs its state, as in a run
    accelerator = SimpleNamespace(device=torch.device("cuda", 0), num_processes=2, local_process_index=0)
    model = prepare_model_layout(DDRNetForSemanticSegmentation(tiny_config()), accelerator, channels_last=True)
    norms = [module for module in model.modules() if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(isinstance(module, torch.nn.SyncBatchNorm) for module in norms)
    assert model.decode_head.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    with patch.object(torch.cuda, "device_count", lambda: 2):
        check_distributed_setup(accelerator, per_device_batch_size=1)  # SyncBatchNorm sees 2 samples
    one_gpu = SimpleNamespace(device=torch.device("cuda", 0), num_processes=1, local_process_index=0)
    model = prepare_model_layout(DDRNetForSemanticSegmentation(tiny_config()), one_gpu, channels_last=False)
    assert not any(isinstance(module, torch.nn.SyncBatchNorm) for module in model.modules())
    refused = pytest.raises(UserInputError, match="--per_device_train_batch_size 1 cannot train")
    with patch.object(torch.cuda, "device_count", lambda: 1), refused:
        check_distributed_setup(one_gpu, per_device_batch_size=1)


def test_more_processes_than_gpus_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    accelerator = SimpleNamespace(device=torch.device("cuda", 0), local_process_index=3, num_processes=4)
    with pytest.raises(UserInputError, match="4 processes were launched but this machine has 2 GPU"):
        check_distributed_setup(accelerator, per_device_batch_size=8)


def resident_memory_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
def test_memory_does_not_grow_over_hundreds_of_steps():
    torch.manual_seed(0)
    model = DDRNetForSemanticSegmentation(tiny_config(class_weights="cityscapes")).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, fused=True)
    pixel_values, labels = torch.randn(2, 3, 64, 64), torch.randint(0, 19, (2, 64, 64))
    samples = []
    for step in range(300):
        loss = model(pixel_values, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step in (100, 299):
            samples.append(resident_memory_mb())
    assert samples[1] - samples[0] < 20, samples


RECIPES = REPO_ROOT / "configs" / "recipes"


train_script = load_script("train")


REQUIRED = ["--data_dir", "/data/cityscapes", "--output_dir", "/runs/out"]


def parse(*argv: str) -> argparse.Namespace:
    return train_script.parse_args([*REQUIRED, *argv])


def parse_error(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_applies_its_values(path):
    written = yaml.safe_load(path.read_text())
    teacher = ["--teacher_model_name_or_path", "/models/teacher"] if "distillation" in written else []
    args = parse("--config", str(path), *teacher)
    for key, value in written.items():
        assert getattr(args, key) == value, key


def test_the_paper_recipes_differ_only_in_the_variant_and_keep_the_techniques_off():
    slim, deep = (
        yaml.safe_load((RECIPES / f"cityscapes-{v}.yaml").read_text()) for v in ("ddrnet-23-slim", "ddrnet-39")
    )
    assert {k for k in slim if slim[k] != deep.get(k)} == {"variant"}
    args = parse("--config", str(RECIPES / "cityscapes-ddrnet-23.yaml"))
    assert (args.ema_decay, args.warmup_steps, args.head_lr_multiplier) == (0.0, 0, 1.0)
    assert (args.rare_class_probability, args.color_jitter) == (0.0, 0.0)
    assert (args.learning_rate, args.per_device_train_batch_size, args.num_train_epochs) == (0.01, 6, 484)


def test_the_loss_and_the_distillation_options_resolve_to_their_values(capsys):
    assert parse().loss == "ohem" and parse("--no_ohem").loss == "cross_entropy"
    assert parse("--loss", "dice_ce_edge").loss == "dice_ce_edge"
    untaught = parse()
    assert (untaught.distillation, untaught.distillation_weight, untaught.distillation_temperature) == (None,) * 3
    taught = parse("--teacher_model_name_or_path", "teacher")
    assert (taught.distillation, taught.distillation_weight, taught.distillation_temperature) == ("channel", 6.0, 3.0)
    assert parse("--teacher_model_name_or_path", "teacher", "--distillation", "pixel").distillation_weight == 1.0
    message = parse_error(capsys, "--no_ohem", "--loss", "dice_ce_edge")
    assert "--no_ohem means --loss cross_entropy, which contradicts --loss dice_ce_edge" in message
    message = parse_error(capsys, "--distillation_weight", "2", "--distillation", "pixel")
    assert "--distillation, --distillation_weight need(s) --teacher_model_name_or_path" in message
    message = parse_error(capsys, "--teacher_model_name_or_path", "t", "--distillation_temperature", "0")
    assert "--distillation_temperature must be a positive number, got 0.0" in message


def test_command_line_flags_override_the_file(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("variant: ddrnet-23\nlearning_rate: 0.02\ncrop_size: [512, 256]\nloss: dice_ce_edge\n")
    from_file = parse("--config", str(recipe))
    assert (from_file.variant, from_file.learning_rate, from_file.crop_size, from_file.loss) == (
        "ddrnet-23",
        0.02,
        [512, 256],
        "dice_ce_edge",
    )
    overridden = parse("--config", str(recipe), "--learning_rate", "0.05", "--model_name_or_path", "/models/m")
    assert overridden.learning_rate == 0.05 and overridden.crop_size == [512, 256]
    # A flag that excludes a file's option replaces it: the file's variant gives way to the model folder.
    assert overridden.model_name_or_path == "/models/m" and overridden.variant is None
    # Without --config, the parser's own defaults.
    assert parse().learning_rate == 0.01 and parse().variant is None


def test_a_file_may_give_the_required_output_dir(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("output_dir: /runs/from_file\ndata_dir: /data\n")
    args = train_script.parse_args(["--config", str(recipe)])
    assert args.output_dir == "/runs/from_file"


@pytest.mark.parametrize(
    "text, message",
    [
        ("learnig_rate: 0.1\n", "line 1: unknown option 'learnig_rate' (did you mean 'learning_rate'?)"),
        ("seed: 1\nema_decy: 0.9\n", "line 2: unknown option 'ema_decy' (did you mean 'ema_decay'?)"),
        ("crop_size: 512\n", "crop_size takes a list of 2 values, got 512"),
        ("learning_rate: [0.1, 0.2]\n", "learning_rate takes one value, got a list"),
        ("per_device_train_batch_size: 2.5\n", "per_device_train_batch_size: invalid value 2.5"),
        ("class_weights: imagenet\n", "class_weights: invalid choice 'imagenet'"),
        ("no_ohem: yes please\n", "no_ohem is a switch: true or false, got 'yes please'"),
        ("overwrite_output_dir: true\n", "'overwrite_output_dir' acts on the output folder"),
        ("variant: ddrnet-23\nmodel_name_or_path: /m\n", "variant and model_name_or_path cannot both be set"),
        ("seed: 1\nseed: 2\n", "line 2: 'seed' is given twice"),
        ("- seed\n", "a recipe is a mapping of option names to values"),
        ("seed: [1\n", "not valid YAML"),
    ],
)
def test_a_bad_recipe_is_one_line_naming_the_file(tmp_path, capsys, text, message):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    line = parse_error(capsys, "--config", str(recipe))
    assert str(recipe) in line and message in line


def test_a_missing_recipe_is_named(tmp_path, capsys):
    line = parse_error(capsys, "--config", str(tmp_path / "nowhere.yaml"))
    assert line.endswith(f"--config {tmp_path / 'nowhere.yaml'}: No such file or directory")


def test_the_resolved_configuration_replays_the_run(tmp_path):
    args = parse("--config", str(RECIPES / "cityscapes-plus.yaml"), "--learning_rate", "0.03", "--overwrite_output_dir")
    recorded = tmp_path / "train_config.yaml"
    write_recipe(resolved_recipe(vars(args)), recorded, "a comment\nover two lines")
    assert recorded.read_text().startswith("# a comment\n# over two lines\n")
    replayed = train_script.parse_args(["--config", str(recorded)])
    # Everything but the flags that act on the output folder (never replayed) and the file name itself.
    expected = {k: v for k, v in vars(args).items() if k not in ("config", "overwrite_output_dir")}
    assert {k: v for k, v in vars(replayed).items() if k not in ("config", "overwrite_output_dir")} == expected
    assert replayed.overwrite_output_dir is False and replayed.learning_rate == 0.03
    assert read_recipe(recorded, train_script.build_parser())["ema_decay"] == 0.9999


def test_warmup_then_poly_at_chosen_steps():
    factor = poly_schedule(max_steps=110, power=0.9, warmup_steps=10, warmup_start_factor=0.1)
    assert factor(0) == pytest.approx(0.1)
    assert factor(5) == pytest.approx(0.1 + 0.9 * 5 / 10)
    assert factor(10) == pytest.approx(1.0)
    assert factor(60) == pytest.approx((1 - 50 / 100) ** 0.9)
    assert factor(110) == 0.0 and factor(200) == 0.0
    # Without warmup, the original schedule exactly.
    plain = poly_schedule(max_steps=100, power=0.9)
    assert [plain(s) for s in (0, 37, 100)] == [1.0, (1 - 37 / 100) ** 0.9, 0.0]


def test_heads_learn_at_the_multiplied_rate_and_follow_the_schedule():
    model = DDRNetForSemanticSegmentation(tiny_config())
    optimizer = sgd_with_momentum_buffers(model, 0.01, 0.9, 5e-4, head_lr_multiplier=10)
    backbone, heads = optimizer.param_groups
    assert (backbone["lr"], heads["lr"]) == (0.01, pytest.approx(0.1))
    head_ids = {id(p) for p in head_parameters(model)}
    assert {id(p) for p in heads["params"]} == head_ids
    assert {id(p) for p in backbone["params"]} == {id(p) for p in model.parameters()} - head_ids
    head_names = [name for name, parameter in model.named_parameters() if id(parameter) in head_ids]
    assert all(name.startswith(("ddrnet.dappm.", "decode_head.", "aux_head.")) for name in head_names)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, poly_schedule(10, 0.9, 2, 0.1))
    assert scheduler.get_last_lr() == pytest.approx([0.001, 0.01])
    for _ in range(6):
        optimizer.step()
        scheduler.step()
    expected = (1 - 4 / 8) ** 0.9
    assert scheduler.get_last_lr() == pytest.approx([0.01 * expected, 0.1 * expected])
    # A multiplier of 1 keeps the original single group.
    assert len(sgd_with_momentum_buffers(model, 0.01, 0.9, 5e-4).param_groups) == 1


def test_the_average_equals_the_closed_form_and_handles_batchnorm():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    decay = 0.7
    average = WeightAverage(model, decay)
    history = []
    for step in range(1, 6):
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.copy_(torch.randn_like(tensor))
        model[1].num_batches_tracked.fill_(step * 3)
        history.append({k: v.clone() for k, v in model.state_dict().items()})
        average.update(model)
        n = len(history)
        for key, value in average.model.state_dict().items():
            if not value.is_floating_point():
                assert value.item() == step * 3  # copied, not averaged
                continue
            closed_form = sum((1 - decay) * decay ** (n - k) * history[k - 1][key] for k in range(1, n + 1))
            torch.testing.assert_close(value, closed_form / (1 - decay**n), rtol=1e-5, atol=1e-6, msg=key)
    # The running statistics are averaged like the weights.
    assert "1.running_var" in history[0] and not torch.equal(average.model[1].running_var, model[1].running_var)
    # The averaged copy is frozen and separate from the trained model.
    assert not any(p.requires_grad for p in average.model.parameters())
    assert average.model[0].weight.data_ptr() != model[0].weight.data_ptr()


def test_the_first_average_is_the_weights_and_the_state_round_trips():
    model = DDRNetForSemanticSegmentation(tiny_config())
    average = WeightAverage(model, 0.9999)
    average.update(model)
    for key, value in model.state_dict().items():
        assert torch.equal(average.model.state_dict()[key], value), key
    restored = WeightAverage(DDRNetForSemanticSegmentation(tiny_config()), 0.9999)
    restored.load_state_dict(average.state_dict())
    assert restored.num_updates == 1
    for key, value in average.model.state_dict().items():
        assert torch.equal(restored.model.state_dict()[key], value), key
    with pytest.raises(ValueError, match="decay 0.9999"):
        WeightAverage(model, 0.99).load_state_dict(average.state_dict())


def test_technique_arguments_are_checked(capsys):
    for flag, value in (("--ema_decay", "1"), ("--rare_class_probability", "1.5"), ("--color_jitter", "-0.1")):
        assert f"{flag} must be in" in parse_error(capsys, flag, value)
    assert "--head_lr_multiplier must be a positive number" in parse_error(capsys, "--head_lr_multiplier", "0")
    assert "--warmup_steps must be >= 0" in parse_error(capsys, "--warmup_steps", "-1")
    assert math.isclose(parse("--ema_decay", "0.999").ema_decay, 0.999)


def test_the_plan_says_when_to_log_evaluate_and_checkpoint():
    plan = TrainingPlan.for_run(
        batches_per_epoch=5, batch_size=2, gradient_accumulation_steps=2, num_train_epochs=4, logging_steps=4
    )
    assert (plan.steps_per_epoch, plan.max_train_steps, plan.eval_steps, plan.checkpointing_steps) == (3, 12, 30, 3)
    assert plan.num_epochs == 4
    assert [step for step in range(1, 13) if plan.is_logging_step(step)] == [4, 8, 12]
    assert [step for step in range(1, 13) if plan.is_eval_step(step)] == [12]
    assert [step for step in range(1, 13) if plan.is_checkpoint_step(step)] == [3, 6, 9, 12]
    assert (plan.epoch_of(4), plan.batches_done_in_epoch(4, gradient_accumulation_steps=2)) == (1, 2)
    assert not plan.is_finished(11) and plan.is_finished(12)
    with pytest.raises(UserInputError, match="fewer images than one batch of 8"):
        TrainingPlan.for_run(batches_per_epoch=0, batch_size=8, gradient_accumulation_steps=1, num_train_epochs=1)


# Knowledge distillation.
def reference_pixel_distillation(student, teacher, valid, temperature):
    """Pixel by pixel, in float64: T^2 x sum_c p_t(c) (log p_t(c) - log p_s(c)), averaged over valid pixels."""
    total, count = 0.0, 0
    for b, y, x in valid.nonzero().tolist():
        p_t = (teacher[b, :, y, x].double() / temperature).softmax(0)
        p_s = (student[b, :, y, x].double() / temperature).softmax(0)
        total += float((p_t * (p_t.log() - p_s.log())).sum())
        count += 1
    return temperature**2 * total / max(count, 1)


def reference_channel_distillation(student, teacher, valid, temperature):
    """Map by map, in float64: each class channel a distribution over the valid positions of its image."""
    batch, num_labels = student.shape[:2]
    total = 0.0
    for b in range(batch):
        keep = valid[b].flatten()
        for c in range(num_labels):
            if not keep.any():
                continue
            p_t = (teacher[b, c].flatten()[keep].double() / temperature).softmax(0)
            p_s = (student[b, c].flatten()[keep].double() / temperature).softmax(0)
            total += float((p_t * (p_t.log() - p_s.log())).sum())
    return temperature**2 * total / (batch * num_labels)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
@pytest.mark.parametrize(
    "loss,reference",
    [
        (pixel_distillation_loss, reference_pixel_distillation),
        (channel_distillation_loss, reference_channel_distillation),
    ],
)
def test_distillation_terms_match_a_hand_computation(loss, reference, temperature):
    torch.manual_seed(int(temperature))
    student, teacher = torch.randn(2, 4, 6, 5) * 2, torch.randn(2, 4, 6, 5) * 2
    valid = torch.rand(2, 6, 5) > 0.3
    valid[1] = False  # an image without a valid pixel adds nothing
    expected = reference(student, teacher, valid, temperature)
    assert loss(student, teacher, valid, temperature).item() == pytest.approx(expected, rel=1e-5)
    # Ignored pixels do not count, whatever the scores there.
    changed = student.clone()
    changed[~valid[:, None].expand_as(student)] = 50.0
    assert loss(changed, teacher, valid, temperature).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("loss", [pixel_distillation_loss, channel_distillation_loss])
def test_distillation_is_zero_when_teacher_equals_student_at_temperature_one(loss):
    logits = torch.randn(2, 5, 7, 7) * 3
    valid = torch.ones(2, 7, 7, dtype=torch.bool)
    assert loss(logits, logits.clone(), valid, 1.0).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(logits, torch.randn(2, 5, 7, 7), valid, 1.0).item() > 0.01


@pytest.mark.parametrize("mode", DISTILLATION_MODES)
def test_gradients_of_the_distillation_term_reach_only_the_student(mode):
    torch.manual_seed(0)
    student = DDRNetForSemanticSegmentation(tiny_config()).train()
    teacher = Teacher(DDRNetForSemanticSegmentation(tiny_config()), mode, 1.0, 3.0)
    pixel_values, labels = torch.randn(2, 3, 32, 32), torch.randint(0, 19, (2, 32, 32))
    labels[:, :4] = 255
    logits = student(pixel_values).logits
    teacher.loss(pixel_values, logits, labels, align_corners=False).backward()
    assert not teacher.model.training
    assert all(p.grad is None and not p.requires_grad for p in teacher.model.parameters())
    student_grads = [p.grad for p in student.decode_head.parameters()]
    assert all(g is not None for g in student_grads) and sum(float(g.abs().sum()) for g in student_grads) > 0


def test_a_teacher_of_other_classes_is_refused_with_one_line(tiny_model_dir):
    with pytest.raises(
        UserInputError,
        match=r"the teacher's 19 classes \(road, sidewalk, building, wall, \.\.\.\) are not the student's 3",
    ):
        load_teacher(tiny_model_dir, ["sky", "road", "car"], 255, "channel", None, 3.0, torch.device("cpu"))
    teacher = load_teacher(tiny_model_dir, class_names(DDRNetConfig()), 255, "pixel", None, 2.0, torch.device("cpu"))
    assert (teacher.weight, teacher.temperature, teacher.model.training) == (DEFAULT_WEIGHTS["pixel"], 2.0, False)
    with pytest.raises(UserInputError, match="--teacher_model_name_or_path: .*holds no config.json"):
        load_teacher(tiny_model_dir.parent, ["a"], 255, "pixel", None, 2.0, torch.device("cpu"))
