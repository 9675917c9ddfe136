"""Two machine ranks on this one machine: `accelerate launch` with configs/accelerate/multi_node.yaml, the fields a
user fills in given on the command line (`--num_machines 2 --machine_rank R --main_process_ip 127.0.0.1 ...`), one
CPU process per "machine" over gloo. Training across them, and what a failed or hung machine does to the other."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import REPO_ROOT, TINY_TRAINING_ARGS, check_evaluation_equals_one_process

MULTI_NODE_CONFIG = REPO_ROOT / "configs" / "accelerate" / "multi_node.yaml"
TRAIN_SCRIPT = REPO_ROOT / "scripts" / "train.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Machine:
    """One machine rank: its launcher in a session of its own, its output in a file that can be read while it runs."""

    def __init__(self, rank: int, port: int, arguments: list[str], log_path: Path):
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(MULTI_NODE_CONFIG)]
        launch += ["--num_machines", "2", "--num_processes", "2", "--machine_rank", str(rank)]
        launch += ["--main_process_ip", "127.0.0.1", "--main_process_port", str(port)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.launcher = subprocess.Popen(
                [*launch, str(TRAIN_SCRIPT), *arguments],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO_ROOT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log_path.read_text()

    def error_lines(self) -> list[str]:
        return [line for line in self.output().splitlines() if line.startswith("error: ")]

    def finish(self, timeout: float) -> int:
        return self.launcher.wait(timeout=timeout)

    def processes(self) -> list[psutil.Process]:
        """The launcher and its training process (torchrun starts it in a session of its own)."""
        launcher = psutil.Process(self.launcher.pid)
        return [launcher, *launcher.children(recursive=True)]

    def kill(self) -> None:
        for process in self.processes():
            process.kill()
        self.launcher.wait(timeout=30)


def two_machines(tmp_path: Path, arguments_of_rank) -> list[Machine]:
    port = free_port()
    return [Machine(rank, port, arguments_of_rank(rank), tmp_path / f"rank{rank}.log") for rank in (0, 1)]


def finish(machines: list[Machine], timeout: float) -> list[int]:
    """Every machine's exit status; those still running after `timeout` (or a failed wait) are killed."""
    try:
        return [machine.finish(timeout=timeout) for machine in machines]
    finally:
        stop_the_rest(machines)


def stop_the_rest(machines: list[Machine]) -> None:
    for machine in machines:
        if machine.launcher.poll() is None:
            machine.kill()


def training_arguments(model_dir, data_dir, output_dir, *extra) -> list[str]:
    arguments = ["--model_name_or_path", str(model_dir), "--data_dir", str(data_dir), "--output_dir", str(output_dir)]
    return [*arguments, "--cache_dir", str(output_dir.parent / "cache"), *TINY_TRAINING_ARGS, *extra]


@pytest.mark.slow
def test_two_machines_train_as_one_run(synthetic_root, tiny_model_dir, tmp_path):
    output_dir = tmp_path / "run"
    extra = ("--max_train_steps", "2", "--eval_steps", "2", "--checkpointing_steps", "2")
    machines = two_machines(
        tmp_path, lambda rank: training_arguments(tiny_model_dir, synthetic_root, output_dir, *extra)
    )
    codes = finish(machines, timeout=400)
    main, other = machines
    assert codes == [0, 0], main.output()[-3000:] + other.output()[-3000:]
    assert "effective batch size 4 = 2 per device x 2 processes" in main.output()
    assert "Weights identical on all 2 processes" in main.output()

    # One set of checkpoints, models and logs, all written by the main process.
    assert [p.name for p in (output_dir / "checkpoints").iterdir()] == ["step_00000002"]
    checkpoint = {p.name for p in (output_dir / "checkpoints" / "step_00000002").iterdir()}
    assert {"model.safetensors", "optimizer.bin", "random_states_0.pkl", "random_states_1.pkl"} <= checkpoint
    assert len(list((output_dir / ".model_versions").iterdir())) == 2  # one best_model, one last_model
    event_files = list((output_dir / "logs").rglob("events.out.tfevents.*"))
    assert event_files and len({path.name.split(".")[-2] for path in event_files}) == 1  # one writer's pid

    check_evaluation_equals_one_process(output_dir, synthetic_root, tmp_path)


@pytest.mark.slow
def test_a_machine_that_fails_stops_the_other_with_one_line(synthetic_root, tiny_model_dir, tmp_path):
    output_dir = tmp_path / "run"

    def arguments(rank: int) -> list[str]:
        data_dir = synthetic_root if rank == 0 else tmp_path / "not-mounted-here"
        return training_arguments(tiny_model_dir, data_dir, output_dir, "--max_train_steps", "50")

    machines = two_machines(tmp_path, arguments)
    codes = finish(machines, timeout=300)
    main, other = machines
    assert codes[0] != 0 and codes[1] != 0
    assert other.error_lines() == [
        f"error: data_dir does not exist or is not a folder: {tmp_path / 'not-mounted-here'}"
    ]
    assert main.error_lines() == ["error: process 0 stopped because another process of the run failed"]
    assert "[rank0]: Traceback" not in main.output() and "[rank1]: Traceback" not in other.output()


@pytest.mark.slow
def test_a_machine_that_hangs_stops_the_other_after_the_timeout(synthetic_root, tiny_model_dir, tmp_path):
    output_dir = tmp_path / "run"
    extra = ("--max_train_steps", "500", "--eval_split", "none", "--report_to", "none", "--ddp_timeout", "10")
    machines = two_machines(
        tmp_path, lambda rank: training_arguments(tiny_model_dir, synthetic_root, output_dir, *extra)
    )
    main, other = machines
    try:
        deadline = time.monotonic() + 300
        while "step 3/500" not in main.output():
            assert main.launcher.poll() is None and time.monotonic() < deadline, main.output()[-3000:]
            time.sleep(0.05)
        for process in other.processes():
            process.suspend()  # a machine that stops answering without closing its connections
        stopped = time.monotonic()
        assert main.finish(timeout=120) != 0
        waited = time.monotonic() - stopped
    finally:
        stop_the_rest(machines)
    assert 10 <= waited < 60, waited
    assert main.error_lines() == [
        "error: process 0 stopped: another process of the run did not answer within the distributed timeout "
        "(--ddp_timeout); it hangs or its machine is unreachable"
    ]


# Rank 0 fails during set-up while rank 1 is busy (not in a collective that would break): torchrun's agent ends
# rank 1 with SIGTERM, which used to kill it before it could say anything.
SET_UP_FAILURE = """
import time
import torch.distributed as dist
from ddrnet_toolkit.commands.runner import run_script
from ddrnet_toolkit.errors import UserInputError

def main():
    dist.init_process_group("gloo")
    dist.barrier()
    if dist.get_rank() == 0:
        raise UserInputError("bad data on the main process")
    time.sleep(120)

run_script(main)
"""


@pytest.mark.slow
def test_a_process_that_its_launcher_ends_says_so(tmp_path):
    program = tmp_path / "set_up_failure.py"
    program.write_text(SET_UP_FAILURE)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port"]
    command += [str(free_port()), str(program)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode != 0
    assert errors == [
        "error: bad data on the main process",
        "error: process 1 was ended by its launcher (SIGTERM): another process of the run failed, or the job was "
        "cancelled",
    ]
    assert "Signal 15 (SIGTERM) received" not in result.stderr  # torchrun saw it exit, not killed
