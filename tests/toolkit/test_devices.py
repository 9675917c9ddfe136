"""Choosing a device: `auto` takes what the machine has; a device it lacks is refused with the reason."""

from __future__ import annotations

import pytest
import torch

from ddrnet_toolkit.devices import resolve_device
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
