"""Inference engines: one interface over the PyTorch model, an onnxruntime session and an OpenVINO compiled model.

An engine is called as the model's logits are: `(batch, 3, H, W)` float32 normalized pixels -> `(batch, labels,
H/8, W/8)` float32 logits on the pixels' device, so that test-time augmentation (`predict_probabilities`),
prediction runs and evaluation take any of them. Each carries the `DDRNetConfig` of the model it computes (classes,
`align_corners`). The exported engines run on the CPU; onnxruntime and OpenVINO are imported only when one is
loaded (the `onnx` and `openvino` extras).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from modeling_ddrnet import DDRNetConfig, DDRNetForSemanticSegmentation

from ..errors import UserInputError, first_line
from ..model_folder import check_model_folder, load_trained_model

ENGINES = ("pytorch", "onnxruntime", "openvino")
# The engine that runs an exported file, by its suffix (OpenVINO also reads .onnx files: `--engine openvino`).
ENGINE_OF_SUFFIX = {".onnx": "onnxruntime", ".xml": "openvino"}
CPU = torch.device("cpu")


class Engine(Protocol):
    name: str
    config: DDRNetConfig
    device: torch.device  # where its inputs are best prepared

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor: ...


class PyTorchEngine:
    """The PyTorch model itself (eval mode, on its device)."""

    name = "pytorch"

    def __init__(self, model: DDRNetForSemanticSegmentation):
        self.model = model.eval()
        self.config = model.config
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


def onnx_session(path: str | Path, threads: int | None = None, spinning: bool = True):
    """A CPU session; without `spinning`, its threads sleep as soon as a run ends instead of busy-waiting for the
    next one."""
    try:
        import onnxruntime
    except ImportError as error:
        raise UserInputError(f"running {path} needs onnxruntime ({error}): pip install 'ddrnet-hf[onnx]'") from error

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxRuntimeEngine:
    """An exported ONNX graph in an onnxruntime CPU session."""

    name = "onnxruntime"
    device = CPU

    def __init__(self, path: str | Path, config: DDRNetConfig, threads: int | None = None):
        # The logits go on to torch (upsampling), whose threads need the cores that spinning onnxruntime threads
        # would hold: on 2 cores, the int8 demo model plus upsampling took 18.6 ms a 256x512 image with spinning,
        # 12.7 ms without (the run alone: 9 ms either way).
        self.session = onnx_session(path, threads, spinning=False)
        self.config = config
        self.num_labels = self.session.get_outputs()[0].shape[1]

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        inputs = {"pixel_values": pixel_values.float().cpu().numpy()}
        return torch.from_numpy(self.session.run(["logits"], inputs)[0]).to(pixel_values.device)


def import_openvino():
    """The `openvino` module, or a `UserInputError` saying how to install it."""
    try:
        import openvino
    except ImportError as error:
        raise UserInputError(f"OpenVINO is not installed ({error}): pip install 'ddrnet-hf[openvino]'") from error
    return openvino


def openvino_properties(threads: int | None = None, precision: str | None = "f32") -> dict[str, str]:
    """CPU plugin properties. `precision` f32: f32 arithmetic wherever the graph is float, so that an fp32 model
    computes what PyTorch computes even on CPUs where OpenVINO would otherwise pick bf16 (those with AVX-512 BF16
    or AMX); None: OpenVINO's own choice."""
    properties = {"PERFORMANCE_HINT": "LATENCY"}
    if precision:
        properties["INFERENCE_PRECISION_HINT"] = precision
    if threads:
        properties["INFERENCE_NUM_THREADS"] = str(threads)
    return properties


class OpenVinoEngine:
    """An OpenVINO model (IR `.xml` file, `.onnx` file or in-memory `openvino.Model`) compiled for the CPU."""

    name = "openvino"
    device = CPU

    def __init__(self, model, config: DDRNetConfig, threads: int | None = None, precision: str | None = "f32"):
        openvino = import_openvino()
        core = openvino.Core()
        if isinstance(model, (str, Path)):
            model = core.read_model(str(model))
        self.num_labels = model.outputs[0].get_partial_shape()[1].get_length()
        self.compiled = core.compile_model(model, "CPU", openvino_properties(threads, precision))
        # What the float parts run in (f32, or bf16 where OpenVINO chose it).
        self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.request = self.compiled.create_infer_request()
        self.config = config

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        outputs = self.request.infer([pixel_values.float().cpu().numpy()], share_inputs=True)
        return torch.from_numpy(outputs[0]).to(pixel_values.device)


def engine_for_file(path: Path, engine: str | None = None, what: str = "exported model") -> str:
    """The engine that runs the exported file `path`: `engine` when given and able to, else by the suffix."""
    by_suffix = ENGINE_OF_SUFFIX.get(path.suffix.lower())
    if by_suffix is None:
        raise UserInputError(f"{what} {path}: not an .onnx file or an OpenVINO .xml file (suffix {path.suffix})")
    if engine is None or engine == by_suffix or (engine == "openvino" and by_suffix == "onnxruntime"):
        return engine or by_suffix
    raise UserInputError(f"{what} {path}: {engine} cannot run a {path.suffix} file")


def load_engine(
    model_dir: str | Path,
    exported: str | Path | None = None,
    engine: str | None = None,
    device: torch.device = CPU,
    threads: int | None = None,
    what: str = "exported model",
) -> Engine:
    """The trained model of `model_dir` on `device`, or its `exported` graph (from `ddrnet-export-onnx` or
    `ddrnet-export-openvino`) on the engine its suffix names, the model folder giving the classes.

    `engine` overrides the choice (`openvino` runs an .onnx file too); `pytorch` needs no exported file. `what`
    starts the messages about the exported file."""
    if exported is None:
        if engine not in (None, "pytorch"):
            raise UserInputError(f"the {engine} engine runs an exported model: export one first")
        return PyTorchEngine(load_trained_model(model_dir).to(device))
    exported = Path(exported)
    if not exported.is_file():
        raise UserInputError(f"{what} {exported}: no such file")
    engine = engine_for_file(exported, engine, what)
    config = DDRNetConfig.from_pretrained(check_model_folder(model_dir))
    try:
        runner = OnnxRuntimeEngine if engine == "onnxruntime" else OpenVinoEngine
        loaded = runner(exported, config, threads)
    except UserInputError:
        raise
    except Exception as error:  # the runtimes' own errors for a damaged or foreign file
        raise UserInputError(f"{what} {exported}: {engine} cannot load it ({first_line(error)})") from error
    if loaded.num_labels != config.num_labels:
        raise UserInputError(
            f"{what} {exported} predicts {loaded.num_labels} classes, the model in {model_dir} "
            f"{config.num_labels}: export this model again"
        )
    return loaded
