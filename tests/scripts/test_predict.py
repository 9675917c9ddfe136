"""predict.py on videos and image sequences: frame counts, sizes, frame rates and pixels of what it writes, and
undecodable videos refused by name with nothing left behind."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script, run_script
from PIL import Image

from dataset_builders.cityscapes.labels import LABEL_ID_TO_TRAIN_ID, PALETTE
from ddrnet_toolkit.data import normalize
from modeling_ddrnet import DDRNetForSemanticSegmentation

av = pytest.importorskip("av")


def moving_rectangles(count: int, height: int, width: int) -> list[np.ndarray]:
    """`count` `(height, width, 3)` uint8 frames: a gray background with a red and a blue rectangle moving."""
    frames = []
    for index in range(count):
        frame = np.full((height, width, 3), 70, np.uint8)
        frame[8:30, 4 * index : 4 * index + 24] = (220, 40, 40)
        frame[36:60, width - 30 - 3 * index : width - 3 * index] = (30, 60, 230)
        frames.append(frame)
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10, faststart: bool = False) -> Path:
    """An H.264 MP4 of `frames`; `faststart` puts its index before the frames, so a cut file still opens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def read_video(path: Path) -> tuple[np.ndarray, Fraction]:
    """`(N, H, W, 3)` uint8 RGB frames of a video and its average frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])
        return frames, stream.average_rate


def expected_classes(model_dir: Path, images: np.ndarray) -> np.ndarray:
    """`(N, H, W, 3)` uint8 -> `(N, H, W)` class indices from the model run on each image, at the image's size."""
    model = DDRNetForSemanticSegmentation.from_pretrained(model_dir).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.stack([normalize(image) for image in images]))).logits
    return torch.nn.functional.interpolate(logits, size=images.shape[1:3], mode="bilinear").argmax(1).numpy()


def predict(model_dir: Path, output_dir: Path, *arguments: str):
    command = ["--model_name_or_path", str(model_dir), "--output_dir", str(output_dir), "--device", "cpu"]
    return run_script("predict.py", *command, *arguments, timeout=300)


def test_video_and_image_in_one_run(tiny_model_dir, tmp_path):
    write_video(tmp_path / "in" / "clips" / "drive.mp4", moving_rectangles(12, 64, 96))
    photo = tmp_path / "in" / "photos" / "street.png"
    photo.parent.mkdir()
    Image.fromarray(moving_rectangles(3, 48, 80)[2]).save(photo)
    out = tmp_path / "out"
    result = predict(
        tiny_model_dir,
        out,
        "--inputs",
        str(tmp_path / "in" / "clips"),
        str(photo),
        "--video_formats",
        "overlay",
        "color",
        "labels",
        "--batch_size",
        "5",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "frame/s" in result.stderr  # the progress bar counts frames

    # The image goes where it would without the video, as before.
    image = np.asarray(Image.open(photo))
    expected = expected_classes(tiny_model_dir, image[None])[0]
    np.testing.assert_array_equal(np.asarray(Image.open(out / "color" / "street.png")), PALETTE[expected])
    assert (out / "overlay" / "street.png").is_file() and not (out / "cityscapes").exists()

    # The frames as PyAV decodes them are what the model saw.
    inputs, input_fps = read_video(tmp_path / "in" / "clips" / "drive.mp4")
    classes = expected_classes(tiny_model_dir, inputs)
    overlay, overlay_fps = read_video(out / "video" / "overlay" / "drive.mp4")
    color, color_fps = read_video(out / "video" / "color" / "drive.mp4")
    assert overlay.shape == color.shape == (12, 64, 96, 3)
    assert overlay_fps == color_fps == input_fps == 10

    labels = sorted((out / "video" / "labels" / "drive").iterdir())
    assert [path.name for path in labels] == [f"frame_{index:06d}.png" for index in range(12)]
    labels = np.stack([np.asarray(Image.open(path)) for path in labels])
    assert labels.shape == (12, 64, 96) and labels.dtype == np.uint8 and labels.max() < 19
    assert (labels == classes).mean() > 0.99  # batches of 5 and of 12 may round a near tie apart

    # Loosely, given the lossy encoding (the masks of a random model have many edges): the overlay is the blend of
    # each frame with its mask (about 3 apart here), not the frame (about 34 apart).
    blend = inputs * 0.5 + PALETTE[labels] * 0.5
    assert np.abs(overlay - blend).mean() < 6
    assert np.abs(overlay.astype(float) - inputs).mean() > 20
    assert np.abs(color.astype(float) - PALETTE[labels]).mean() < 8
    assert not list(out.rglob("*.tmp"))


def test_image_sequence_becomes_one_video_in_name_order(tiny_model_dir, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "seq" / "cam_left"
    folder.mkdir(parents=True)
    # Odd sizes: the video gets one more row and column; each frame a distinct brightness to check the order.
    frames = [
        np.full((63, 95, 3), 20 * index, np.uint8) + rng.integers(0, 10, (63, 95, 3), np.uint8) for index in range(11)
    ]
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame_{index}.png")  # frame_10 sorts after frame_9, not frame_1
    out = tmp_path / "out"
    result = predict(
        tiny_model_dir,
        out,
        "--inputs",
        str(tmp_path / "seq"),
        "--sequence_fps",
        "12.5",
        "--video_formats",
        "overlay",
        "labels",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (out / "overlay").exists() and not (out / "color").exists()  # no per-image outputs

    video, fps = read_video(out / "video" / "overlay" / "cam_left.mp4")
    assert video.shape == (11, 64, 96, 3) and fps == Fraction(25, 2)
    labels = np.stack(
        [np.asarray(Image.open(path)) for path in sorted((out / "video" / "labels" / "cam_left").iterdir())]
    )
    assert labels.shape == (11, 63, 95)
    blend = np.stack(frames) * 0.5 + PALETTE[labels] * 0.5
    assert np.abs(video[:, :63, :95] - blend).mean(axis=(1, 2, 3)).max() < 4
    np.testing.assert_allclose(video[:, 63], video[:, 62], atol=12)  # the added row copies the edge


def test_formats_refused_with_sequence_fps():
    arguments = ["--model_name_or_path", "m", "--inputs", "i", "--output_dir", "o", "--sequence_fps", "10"]
    with pytest.raises(SystemExit) as stopped:
        load_script("predict").parse_args([*arguments, "--formats", "color"])
    assert stopped.value.code == 2
    assert load_script("predict").parse_args(arguments).sequence_fps == 10


def cut_inside_a_packet(path: Path, packet_index: int) -> Path:
    """Cut a faststart video in the middle of one of its packets: it opens, then breaks while being decoded."""
    with av.open(str(path)) as container:
        packet = [p for p in container.demux(video=0) if p.size][packet_index]
        cut = packet.pos + packet.size // 2
    path.write_bytes(path.read_bytes()[:cut])
    return path


def frames_cut_off(tmp: Path) -> Path:
    return cut_inside_a_packet(write_video(tmp / "in" / "cut.mp4", moving_rectangles(12, 64, 96), faststart=True), 8)


def test_undecodable_videos_refused_by_name_before_anything_is_written(tiny_model_dir, tmp_path):
    text = tmp_path / "in" / "notes.mp4"
    text.parent.mkdir()
    text.write_text("not a video\n")
    recording = write_video(tmp_path / "in" / "recording.mp4", moving_rectangles(12, 64, 96))
    recording.write_bytes(recording.read_bytes()[: recording.stat().st_size // 2])  # its index is at the end
    result = predict(tiny_model_dir, tmp_path / "out", "--inputs", str(tmp_path / "in"))
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1 and "Traceback" not in result.stderr and len(errors) == 1
    assert "2 of 2 input(s) cannot be read, nothing was predicted" in errors[0]
    for path in (text, recording):
        assert f"{path}: cannot be decoded as a video (Invalid data found when processing input)" in errors[0]
    assert not (tmp_path / "out").exists()


def test_video_truncated_midway_stops_and_its_partial_outputs_are_removed(tiny_model_dir, tmp_path):
    bad = frames_cut_off(tmp_path)
    out = tmp_path / "out"
    result = predict(
        tiny_model_dir, out, "--inputs", str(bad), "--video_formats", "overlay", "labels", "--batch_size", "2"
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1 and "Traceback" not in result.stderr and len(errors) == 1
    # It opened, so frames were predicted and written before the cut packet was reached.
    assert f"error: {bad}: cannot be decoded as a video (the packet at byte" in errors[0]
    assert "cut short: truncated file?) (stopped;" in errors[0]
    assert not [path for path in out.rglob("*") if not path.is_dir()]  # no video, frame or temporary file


def test_undecodable_video_skipped_beside_a_good_one(tiny_model_dir, tmp_path):
    bad = frames_cut_off(tmp_path)
    write_video(tmp_path / "in" / "good.mp4", moving_rectangles(12, 64, 96))
    out = tmp_path / "out"
    result = predict(tiny_model_dir, out, "--inputs", str(tmp_path / "in"), "--on_error", "skip")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"skipped: {bad}: cannot be decoded as a video" in result.stderr
    assert "error: skipped 1 of 2 input(s)" in result.stderr
    assert [path.name for path in out.rglob("*") if path.is_file()] == ["good.mp4"]
    assert read_video(out / "video" / "overlay" / "good.mp4")[0].shape == (12, 64, 96, 3)


def test_predict_writes_three_formats_with_the_right_sizes_and_values(synthetic_root, tiny_model_dir, tmp_path):
    val_images = sorted((synthetic_root / "leftImg8bit" / "val").glob("*/*.png"))
    odd = tmp_path / "odd_size.jpg"
    Image.new("RGB", (100, 50), (90, 90, 100)).save(odd)
    result = run_script(
        "predict.py",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--output_dir",
        str(tmp_path / "out"),
        "--inputs",
        str(synthetic_root / "leftImg8bit" / "val"),
        str(odd),
        "--formats",
        "color",
        "overlay",
        "cityscapes",
        "--batch_size",
        "2",
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    model = DDRNetForSemanticSegmentation.from_pretrained(tiny_model_dir).eval()
    # Outputs keep each input's folder relative to the inputs' common parent.
    common = Path(os.path.commonpath([p.resolve().parent for p in [*val_images, odd]]))
    for path in [*val_images, odd]:
        name = path.resolve().relative_to(common).with_suffix(".png")
        image = np.asarray(Image.open(path).convert("RGB"))
        with torch.no_grad():
            logits = model(torch.from_numpy(normalize(image))[None]).logits
        upsampled = torch.nn.functional.interpolate(logits, size=image.shape[:2], mode="bilinear")
        expected = upsampled.argmax(1)[0].numpy()
        color = np.asarray(Image.open(tmp_path / "out" / "color" / name))
        label_ids = np.asarray(Image.open(tmp_path / "out" / "cityscapes" / name))
        overlay = np.asarray(Image.open(tmp_path / "out" / "overlay" / name))
        assert color.shape == overlay.shape == (*image.shape[:2], 3) and label_ids.shape == image.shape[:2]
        np.testing.assert_array_equal(color, PALETTE[expected])
        np.testing.assert_array_equal(LABEL_ID_TO_TRAIN_ID[label_ids], expected)  # label ids, not train ids
        assert set(np.unique(label_ids)) <= {7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33}
        np.testing.assert_allclose(overlay, image * 0.5 + PALETTE[expected] * 0.5, atol=1)


def test_predict_reports_missing_inputs(tiny_model_dir, tmp_path):
    result = run_script(
        "predict.py",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--output_dir",
        str(tmp_path),
        "--inputs",
        str(tmp_path / "nothing*.png"),
    )
    assert result.returncode == 1 and "nothing*.png" in result.stderr


def test_predict_writes_raw_class_indices_for_other_tools(synthetic_root, tiny_model_dir, tmp_path):
    image = sorted((synthetic_root / "leftImg8bit" / "val").glob("*/*.png"))[0]
    arguments = ["--model_name_or_path", str(tiny_model_dir), "--inputs", str(image), "--output_dir", str(tmp_path)]
    result = run_script("predict.py", *arguments, "--formats", "labels", "color")
    assert result.returncode == 0, result.stderr[-2000:]
    labels = Image.open(next((tmp_path / "labels").rglob("*.png")))
    color = np.asarray(Image.open(next((tmp_path / "color").rglob("*.png"))))
    assert labels.mode == "L" and labels.size == Image.open(image).size
    classes = np.asarray(labels)
    assert classes.max() < 19
    np.testing.assert_array_equal(color, PALETTE[classes])  # the same prediction, as indices and as colours


def test_predict_on_an_exported_int8_model_writes_what_the_pytorch_model_writes(
    exported_tiny_models, tiny_model_dir, synthetic_root, tmp_path
):
    from conftest import TINY_INT8_BOUND

    write_video(tmp_path / "in" / "clips" / "drive.mp4", moving_rectangles(6, 64, 96))
    inputs = ["--inputs", str(synthetic_root / "leftImg8bit" / "val"), str(tmp_path / "in" / "clips")]
    formats = ["--formats", "color", "overlay", "cityscapes", "--video_formats", "overlay", "color", "labels"]
    runs = {
        "pytorch": [],
        "openvino-int8": ["--exported_model", str(exported_tiny_models["openvino-int8"])],
        "onnx-int8": ["--exported_model", str(exported_tiny_models["onnx-int8"])],
    }
    for name, engine in runs.items():
        result = predict(tiny_model_dir, tmp_path / name, *inputs, *formats, *engine)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "wrote 3 prediction(s) per format" in result.stdout and "wrote 1 video(s) of 6 frame(s)" in result.stdout

    def files(root: Path) -> list[Path]:
        return sorted(path.relative_to(root) for path in root.rglob("*") if path.is_file())

    reference = files(tmp_path / "pytorch")
    assert len(reference) == 3 * 3 + 2 + 6
    for name in ("openvino-int8", "onnx-int8"):
        assert files(tmp_path / name) == reference  # the same files, formats and names
        for path in reference:
            if path.suffix != ".png":
                continue
            expected = np.asarray(Image.open(tmp_path / "pytorch" / path))
            actual = np.asarray(Image.open(tmp_path / name / path))
            assert actual.shape == expected.shape and actual.dtype == expected.dtype
            if path.parts[0] == "cityscapes" or "labels" in path.parts:  # the labels, within the export's bound
                assert (actual != expected).mean() <= TINY_INT8_BOUND


def test_eval_scores_an_exported_model_as_the_pytorch_model(
    exported_tiny_models, tiny_model_dir, synthetic_root, cache_dir, tmp_path
):
    import json

    scores = {}
    engines = {"pytorch": [], "openvino": ["--exported_model", str(exported_tiny_models["openvino"])]}
    for name, engine in engines.items():
        output = tmp_path / f"{name}.json"
        result = run_script(
            "eval.py",
            "--model_name_or_path",
            str(tiny_model_dir),
            "--data_dir",
            str(synthetic_root),
            "--cache_dir",
            str(cache_dir),
            "--num_workers",
            "0",
            "--output_file",
            str(output),
            *engine,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        scores[name] = json.loads(output.read_text())
    assert scores["pytorch"]["engine"] == "pytorch" and scores["openvino"]["engine"] == "openvino"
    assert scores["openvino"]["exported_model"] == str(exported_tiny_models["openvino"])
    assert scores["openvino"]["mean_iou"] == pytest.approx(scores["pytorch"]["mean_iou"], abs=1e-4)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--engine", "openvino"], "--engine openvino runs an exported model: give --exported_model"),
        (["--engine", "pytorch", "--exported_model", "m.xml"], "--engine pytorch runs --model_name_or_path itself"),
        (["--exported_model", "m.bin"], "--exported_model m.bin: not an .onnx file or an OpenVINO .xml file"),
        (["--exported_model", "m.xml", "--engine", "onnxruntime"], "--exported_model m.xml: onnxruntime cannot run"),
    ],
    ids=["engine-without-export", "pytorch-with-export", "bad-suffix", "engine-cannot-run-it"],
)
def test_engine_argument_errors(arguments, message, tmp_path, capsys):
    argv = ["--model_name_or_path", "M", "--inputs", "x.png", "--output_dir", str(tmp_path / "out"), *arguments]
    with pytest.raises(SystemExit) as exit_info:
        load_script("predict").parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
