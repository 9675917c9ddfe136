"""What a measurement ran on: the device, the versions of torch, CUDA and cuDNN, the numeric flags that change
speed and results, and which optional packages are installed."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import time

import torch

from ..devices import supports_bfloat16

# Import name -> distribution name of the packages the sections need beyond torch and transformers.
PACKAGES = {
    "accelerate": "accelerate",
    "datasets": "datasets",
    "evaluate": "evaluate",
    "tensorboard": "tensorboard",
    "cityscapesscripts": "cityscapesscripts",
    "cv2": "opencv-python-headless",
    "pyspng": "pyspng",
    "yaml": "pyyaml",
    "tqdm": "tqdm",
    "av": "av",
    "onnx": "onnx",
    "onnxscript": "onnxscript",
    "onnxruntime": "onnxruntime",
    "gradio": "gradio",
}


def missing_packages(modules: tuple[str, ...]) -> list[str]:
    """The distributions (pip names) of the `modules` that cannot be imported here."""
    return [PACKAGES.get(name, name) for name in modules if importlib.util.find_spec(name) is None]


def package_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        gpu = torch.cuda.get_device_properties(device)
        return f"{gpu.name} ({gpu.total_memory / 2**30:.0f} GiB, compute capability {gpu.major}.{gpu.minor})"
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def device_facts(device: torch.device) -> dict:
    """The date, the device, the software versions and the flags a table of measurements depends on."""
    cuda = device.type == "cuda"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "device": device_name(device),
        "device_type": device.type,
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "cpu_cores": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32) if cuda else None,
        "matmul_precision": torch.get_float32_matmul_precision(),
        "bfloat16": supports_bfloat16(device),
        "packages": {name: package_version(name) for name in sorted({*PACKAGES.values(), "transformers"})},
    }


def facts_line(facts: dict) -> str:
    """`device_facts` as the one line above a table."""
    versions = f"torch {facts['torch']}"
    if facts["cuda"] is not None:
        versions += f", CUDA {facts['cuda']}, cuDNN {facts['cudnn']}"
        versions += f", cudnn.benchmark={facts['cudnn_benchmark']}, cudnn TF32={facts['cudnn_allow_tf32']}"
    return (
        f"{facts['date']}, {facts['device']}, {facts['cpu_cores']} CPU cores, {versions}, float32 matmul precision "
        f"{facts['matmul_precision']}, bf16 {'supported' if facts['bfloat16'] else 'not supported'}"
    )
