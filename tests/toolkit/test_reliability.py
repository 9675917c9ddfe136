"""Preemption, crashes, divergence, bad arguments and memory: the run keeps its work and says what is wrong."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator
from conftest import REPO_ROOT, TINY_TRAINING_ARGS, load_script, tiny_config
from safetensors.torch import load_file

from ddrnet_toolkit import model_folder
from ddrnet_toolkit.errors import UserInputError
from ddrnet_toolkit.model_folder import save_pretrained_atomically
from ddrnet_toolkit.training.accelerator import check_distributed_setup
from ddrnet_toolkit.training.checkpointing import find_latest_checkpoint, resolve_checkpoint
from ddrnet_toolkit.training.guards import NonFiniteGuard, TrainingDiverged
from modeling_ddrnet import DDRNetForSemanticSegmentation, DDRNetImageProcessor

TRAIN_SCRIPT = REPO_ROOT / "scripts" / "train.py"


def train_command(synthetic_root, model_dir, output_dir, *extra) -> list[str]:
    args = ["--model_name_or_path", str(model_dir), "--data_dir", str(synthetic_root), "--output_dir", str(output_dir)]
    args += ["--cache_dir", str(output_dir.parent / "cache"), "--report_to", "none", "--eval_split", "none"]
    return [sys.executable, str(TRAIN_SCRIPT), *args, *TINY_TRAINING_ARGS, *extra]


class Run:
    """A training process in its own session, its output in a file that can be read while it runs."""

    def __init__(self, command: list[str], log_path):
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
            )

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, condition, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"the run ended early: {self.output()[-3000:]}"
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.005)

    def signal(self, number: int) -> None:
        os.killpg(self.process.pid, number)

    def finish(self) -> tuple[int, str]:
        self.process.wait(timeout=300)
        return self.process.returncode, self.output()


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


@pytest.mark.parametrize("crash_at", ["save_pretrained", "symlink", "replace"])
def test_a_crash_while_saving_leaves_the_previous_model_whole(tmp_path, monkeypatch, crash_at):
    """Weights and eval_results.json always come from the same save, whenever the save is interrupted."""
    torch.manual_seed(0)
    old = DDRNetForSemanticSegmentation(tiny_config()).eval()
    processor = DDRNetImageProcessor()
    target = tmp_path / "best_model"
    save_pretrained_atomically(old, processor, target, {"eval_results.json": {"mean_iou": 0.1}})
    new = DDRNetForSemanticSegmentation(tiny_config()).eval()
    with torch.no_grad():
        new.decode_head.conv2.bias.add_(1.0)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    owner = new if crash_at == "save_pretrained" else model_folder.os
    monkeypatch.setattr(owner, crash_at, crash)
    with pytest.raises(KeyboardInterrupt):
        save_pretrained_atomically(new, processor, target, {"eval_results.json": {"mean_iou": 0.2}})
    monkeypatch.undo()
    loaded = DDRNetForSemanticSegmentation.from_pretrained(target).eval()
    pixel_values = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(pixel_values).logits, old(pixel_values).logits)
    assert json.loads((target / "eval_results.json").read_text()) == {"mean_iou": 0.1}

    # The next save completes and removes the version the interrupted one left behind.
    save_pretrained_atomically(new, processor, target, {"eval_results.json": {"mean_iou": 0.2}})
    assert json.loads((target / "eval_results.json").read_text()) == {"mean_iou": 0.2}
    assert [p.name for p in (tmp_path / ".model_versions").iterdir()] == [target.resolve().name]


def test_atomic_save_never_touches_folders_it_did_not_write(tmp_path):
    user_folder = tmp_path / "best_model.tmp"  # a user's folder with the old staging name
    user_folder.mkdir()
    (user_folder / "notes.txt").write_text("mine")
    real_folder = tmp_path / "best_model"
    real_folder.mkdir()
    model, processor = DDRNetForSemanticSegmentation(tiny_config()), DDRNetImageProcessor()
    with pytest.raises(UserInputError, match="was not written by this project"):
        save_pretrained_atomically(model, processor, real_folder, {})
    save_pretrained_atomically(model, processor, tmp_path / "last_model", {})
    assert (user_folder / "notes.txt").read_text() == "mine" and real_folder.is_dir()


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


def test_more_processes_than_gpus_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    accelerator = SimpleNamespace(device=torch.device("cuda", 0), local_process_index=3, num_processes=4)
    with pytest.raises(UserInputError, match="4 processes were launched but this machine has 2 GPU"):
        check_distributed_setup(accelerator, per_device_batch_size=8)


def resident_memory_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


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
