"""int8 export and benchmark: the graph holds int8 weights, onnxruntime runs it, it agrees with fp32; bad inputs
and refused quantizations write nothing."""

from __future__ import annotations

import onnx
import pytest
import torch
from conftest import int8_export_arguments, load_script, run_script

from ddrnet_toolkit.data.selection import load_dataset
from ddrnet_toolkit.errors import UserInputError
from ddrnet_toolkit.export.int8 import compare_predictions, split_samples
from ddrnet_toolkit.inference.engines import OnnxRuntimeEngine
from modeling_ddrnet import DDRNetConfig

export_script = load_script("export_onnx")
benchmark_script = load_script("benchmark")


def test_int8_export_holds_int8_weights_and_agrees_with_fp32(tiny_model_dir, synthetic_root, cache_dir, tmp_path):
    argv = int8_export_arguments(tiny_model_dir, tmp_path / "m.onnx", synthetic_root, cache_dir)
    result = run_script("export_onnx.py", *argv)
    assert result.returncode == 0, result.stderr[-2000:]
    int8_file = tmp_path / "m.int8.onnx"
    assert "wrote" in result.stdout and f"wrote {int8_file}" in result.stdout and "labels differ on" in result.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.int8.onnx", "m.onnx"]  # no temporary left

    # Every convolution reads int8 weights (per output channel) through a DequantizeLinear; activations are
    # quantized to uint8 between them.
    graph = onnx.load(int8_file).graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    convolutions = [node for node in graph.node if node.op_type == "Conv"]
    assert len(convolutions) == sum(node.op_type == "Conv" for node in onnx.load(tmp_path / "m.onnx").graph.node)
    for conv in convolutions:
        dequantize = producers[conv.input[1]]
        assert dequantize.op_type == "DequantizeLinear"
        weight = initializers[dequantize.input[0]]
        assert weight.data_type == onnx.TensorProto.INT8 and len(initializers[dequantize.input[1]].dims) == 1
    quantize = [node for node in graph.node if node.op_type == "QuantizeLinear"]
    assert quantize and all(initializers[node.input[2]].data_type == onnx.TensorProto.UINT8 for node in quantize)

    # onnxruntime runs it at another size and batch (the axes stay dynamic).
    config = DDRNetConfig.from_pretrained(tiny_model_dir)
    int8 = OnnxRuntimeEngine(int8_file, config)
    assert int8(torch.randn(2, 3, 96, 160)).shape == (2, 19, 12, 20)

    # Agreement with fp32 on the validation split, which calibration did not see.
    data = load_dataset(data_dir=str(synthetic_root), cache_dir=str(cache_dir))
    validation = data.split("validation", labelled=True)
    samples = split_samples(validation, range(len(validation)))
    agreement = compare_predictions(OnnxRuntimeEngine(tmp_path / "m.onnx", config), int8, samples, config)
    change = agreement.mean_iou_int8 - agreement.mean_iou_fp32
    print(
        f"int8 vs fp32 on {agreement.num_images} validation images: labels differ on {agreement.disagreement:.2%} "
        f"of the pixels; mean IoU {agreement.mean_iou_fp32:.2%} -> {agreement.mean_iou_int8:.2%} ({100 * change:+.2f})"
    )
    assert agreement.num_images == len(validation)
    assert 0 < agreement.disagreement < 0.1
    assert abs(change) < 0.02


def test_refused_int8_writes_nothing(tiny_model_dir, synthetic_root, cache_dir, tmp_path):
    output = tmp_path / "m.onnx"
    output.write_text("previous export\n")
    argv = [*int8_export_arguments(tiny_model_dir, output, synthetic_root, cache_dir), "--max_label_disagreement", "0"]
    with pytest.raises(UserInputError, match=r"--max_label_disagreement 0\.0: .* on \d+\.\d+% .*nothing was written"):
        export_script.main(argv)
    assert output.read_text() == "previous export\n"  # the fp32 file is not replaced either
    assert [path.name for path in tmp_path.iterdir()] == ["m.onnx"]


@pytest.mark.parametrize(
    ("dropped", "added", "message"),
    [
        ("--calibration_data_dir", [], "--int8 and --calibration_data_dir go together"),
        ("--int8", [], "--int8 and --calibration_data_dir go together"),
        (None, ["--num_calibration_images", "0"], "--num_calibration_images must be at least 1, got 0"),
        (None, ["--max_label_disagreement", "1.5"], "--max_label_disagreement must be between 0 and 1, got 1.5"),
    ],
    ids=["int8-without-data", "data-without-int8", "no-calibration-images", "disagreement-above-1"],
)
def test_int8_argument_errors(dropped, added, message, tiny_model_dir, synthetic_root, cache_dir, tmp_path, capsys):
    argv = int8_export_arguments(tiny_model_dir, tmp_path / "m.onnx", synthetic_root, cache_dir) + added
    if dropped is not None:  # the option, and its value when it takes one
        position = argv.index(dropped)
        del argv[position : position + (1 if dropped == "--int8" else 2)]
    with pytest.raises(SystemExit) as exit_info:
        export_script.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_missing_calibration_folder_is_named(tiny_model_dir, cache_dir, tmp_path):
    argv = int8_export_arguments(tiny_model_dir, tmp_path / "out" / "m.onnx", tmp_path / "nowhere", cache_dir)
    with pytest.raises(UserInputError, match=r"^--calibration_data_dir .*nowhere: no such folder$"):
        export_script.main(argv)
    assert not (tmp_path / "out").exists()


def test_unknown_calibration_split_exits_1_naming_it(tiny_model_dir, synthetic_root, cache_dir, tmp_path):
    argv = int8_export_arguments(tiny_model_dir, tmp_path / "m.onnx", synthetic_root, cache_dir)
    result = run_script("export_onnx.py", *argv, "--calibration_split", "holdout")
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --calibration_split holdout is not a split of cityscapes; choose from train, validation, test, trainval"
    )
    assert not list(tmp_path.iterdir())


def test_export_script_checks_itself(tiny_model_dir, tmp_path):
    result = run_script(
        "export_onnx.py",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--output",
        str(tmp_path / "m.onnx"),
        "--check_size",
        "64",
        "128",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "max |difference|" in result.stdout and (tmp_path / "m.onnx").stat().st_size > 0
