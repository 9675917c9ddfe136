"""Choosing a device: `auto` takes what the machine has; a device it lacks is refused with the reason. What a device
decides (bfloat16, the mixed precision to train with, pinned memory), with the device's answers injected."""

from __future__ import annotations

import pytest
import torch

from ddrnet_toolkit.devices import pins_memory, resolve_device, supports_bfloat16, training_mixed_precision
from ddrnet_toolkit.errors import UserInputError


def test_auto_and_cpu_resolve_to_devices_of_this_machine():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize(
    "name,message",
    [
        ("gpu0", "gpu0: not a device"),
        ("meta", "meta: unsupported device type"),
        pytest.param(
            "cuda",
            "cuda: no CUDA GPU is available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU"),
        ),
        pytest.param(
            "cuda:99",
            "cuda:99: this machine has",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
        ),
    ],
)
def test_a_device_this_machine_lacks_is_refused_naming_it(name, message):
    with pytest.raises(UserInputError, match=f"^{message}"):
        resolve_device(name)


def test_the_mixed_precision_to_train_with_follows_the_device():
    cuda = torch.device("cuda")
    assert training_mixed_precision(cuda, bfloat16=True) == "bf16"
    assert training_mixed_precision(cuda, bfloat16=False) == "fp16"  # GPUs before Ampere
    assert training_mixed_precision(torch.device("cpu")) == "no"
    assert supports_bfloat16(torch.device("cpu"))


def test_supports_bfloat16_asks_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert not supports_bfloat16(torch.device("cuda"))
    assert training_mixed_precision(torch.device("cuda")) == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert training_mixed_precision(torch.device("cuda")) == "bf16"


def test_only_cuda_batches_are_pinned():
    assert pins_memory(torch.device("cuda", 0)) and not pins_memory(torch.device("cpu"))
