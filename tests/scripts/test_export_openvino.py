"""OpenVINO export: the IR and its int8 version are written together only when they pass their checks, the int8
IR holds quantized convolutions, and a refused export or a bad argument writes nothing."""

from __future__ import annotations

import pytest
from conftest import int8_export_arguments, load_script, run_script

from ddrnet_toolkit.errors import UserInputError

export_script = load_script("export_openvino")


def test_openvino_export_writes_both_irs_with_quantized_convolutions(
    tiny_model_dir, synthetic_root, cache_dir, tmp_path
):
    import openvino

    argv = int8_export_arguments(tiny_model_dir, tmp_path / "m.xml", synthetic_root, cache_dir)
    result = run_script("export_openvino.py", *argv)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"wrote {tmp_path / 'm.xml'}; openvino vs PyTorch on 2x3x64x128: max |difference|" in result.stdout
    assert f"wrote {tmp_path / 'm.int8.xml'}; int8 vs fp32 on 4 train images: labels differ on" in result.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.bin", "m.int8.bin", "m.int8.xml", "m.xml"]

    core = openvino.Core()
    fp32, int8 = core.read_model(tmp_path / "m.xml"), core.read_model(tmp_path / "m.int8.xml")
    for model in (fp32, int8):  # dynamic batch and size, the ONNX graph's names
        assert model.inputs[0].any_name == "pixel_values" and model.outputs[0].any_name == "logits"
        assert str(model.inputs[0].get_partial_shape()) == "[?,3,?,?]"

    def count(model, kind: str) -> int:
        return sum(op.get_type_name() == kind for op in model.get_ordered_ops())

    # Every convolution of the int8 IR reads quantized activations; its weights are stored as int8 constants.
    assert count(fp32, "FakeQuantize") == 0 and count(int8, "Convolution") == count(fp32, "Convolution")
    assert count(int8, "FakeQuantize") >= count(int8, "Convolution")
    weights = [op for op in int8.get_ordered_ops() if op.get_type_name() == "Constant"]
    assert sum(str(op.get_element_type()) == "<Type: 'int8_t'>" for op in weights) >= count(int8, "Convolution")


def test_refused_openvino_int8_writes_nothing(tiny_model_dir, synthetic_root, cache_dir, tmp_path):
    (tmp_path / "m.xml").write_text("previous export\n")
    (tmp_path / "m.bin").write_text("previous weights\n")
    argv = int8_export_arguments(tiny_model_dir, tmp_path / "m.xml", synthetic_root, cache_dir)
    with pytest.raises(UserInputError, match=r"--max_label_disagreement 0\.0: .* on \d+\.\d+% .*nothing was written"):
        export_script.main([*argv, "--max_label_disagreement", "0"])
    assert (tmp_path / "m.xml").read_text() == "previous export\n"
    assert (tmp_path / "m.bin").read_text() == "previous weights\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.bin", "m.xml"]  # no staging folder left


def test_openvino_output_must_be_an_xml_file(tiny_model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_script.main(["--model_name_or_path", str(tiny_model_dir), "--output", str(tmp_path / "m.onnx")])
    assert exit_info.value.code == 2
    assert "--output must end in .xml (the IR's weights go beside it, in .bin)" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
