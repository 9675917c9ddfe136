"""The core files module and the writers built on it: outputs get the permissions a plain write would give them,
a killed writer's temporaries are removed by the next write, a 254-byte name works, and a full disk ends in one
line that names the folder, with nothing partial left behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from conftest import tiny_config

from ddrnet_toolkit.errors import UserInputError
from ddrnet_toolkit.files import staging_folder, write_json, write_text_atomically, written_atomically
from ddrnet_toolkit.hub import publish
from ddrnet_toolkit.model_folder import save_pretrained_atomically
from ddrnet_toolkit.training.checkpointing import TrainerState, save_checkpoint
from modeling_ddrnet import DDRNetForSemanticSegmentation, DDRNetImageProcessor


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def test_atomic_outputs_get_the_permissions_of_a_plain_write(tmp_path, umask_027):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    write_text_atomically(tmp_path / "atomic.txt", "x")
    assert (tmp_path / "atomic.txt").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o640
    with staging_folder(tmp_path / "frames") as folder:
        assert folder.stat().st_mode & 0o777 == 0o750
    model = DDRNetForSemanticSegmentation(tiny_config())
    save_pretrained_atomically(model, DDRNetImageProcessor(), tmp_path / "best_model", {"eval_results.json": {}})
    assert (tmp_path / "best_model").resolve().stat().st_mode & 0o777 == 0o750  # the version folder, readable


def test_a_killed_writers_temporaries_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "results.json"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".results.json.{dead.pid}-abcd1234.tmp"
    stale.write_text("half")
    running = tmp_path / f".results.json.{os.getpid()}-abcd1234.tmp"  # a writer that is still at work
    running.write_text("in progress")
    other = tmp_path / ".notes.txt.999999-abcd1234.tmp"  # another destination's
    other.write_text("x")
    write_json(target, {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["results.json", running.name, other.name])


def test_a_254_byte_name_is_written_and_its_temporary_fits(tmp_path):
    target = tmp_path / ("é" * 127)  # 254 bytes in UTF-8
    with written_atomically(target) as temporary:
        assert len(temporary.name.encode()) <= 255
        temporary.write_text("x")
    assert target.read_text() == "x" and [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.fixture
def full_disk(tmp_path) -> Path:
    """A 256 KB tmpfs: a model of the tiny config does not fit. Needs the right to mount (root on Linux)."""
    folder = tmp_path / "small_disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_names_the_folder_and_leaves_nothing_partial(full_disk, tiny_model_dir):
    model = DDRNetForSemanticSegmentation(tiny_config())
    with pytest.raises(UserInputError, match=f"^no space left on the device holding {full_disk}$"):
        save_pretrained_atomically(model, DDRNetImageProcessor(), full_disk / "best_model", {})
    assert not (full_disk / "best_model").exists() and not list((full_disk / ".model_versions").iterdir())

    accelerator = Accelerator(cpu=True)
    prepared = accelerator.prepare(torch.nn.Linear(10_000, 100))
    with pytest.raises(UserInputError, match=f"^no space left on the device holding {full_disk / 'checkpoints'}$"):
        save_checkpoint(accelerator, full_disk / "checkpoints", TrainerState(global_step=3), 2)
    assert not list((full_disk / "checkpoints").iterdir())  # no step_00000003.tmp
    del prepared

    with pytest.raises(UserInputError, match=f"^no space left on the device holding {full_disk / 'hub' / 'org'}$"):
        publish(tiny_model_dir, full_disk / "hub", "org/name")
    assert not [p for p in (full_disk / "hub").rglob("*") if p.is_file()]
