"""predict.py on videos and image sequences: frame counts, sizes, frame rates and pixels of what it writes, and
undecodable videos refused by name with nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
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
    # No video, frame, temporary file or manifest (the job did not finish): only the settings the outputs would have.
    assert not [path for path in out.rglob("*") if not path.is_dir()]  # no output, and no record of one


def test_undecodable_video_skipped_beside_a_good_one(tiny_model_dir, tmp_path):
    bad = frames_cut_off(tmp_path)
    write_video(tmp_path / "in" / "good.mp4", moving_rectangles(12, 64, 96))
    out = tmp_path / "out"
    result = predict(tiny_model_dir, out, "--inputs", str(tmp_path / "in"), "--on_error", "skip")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"skipped: {bad}: cannot be decoded as a video" in result.stderr
    assert "error: skipped 1 of 2 input(s)" in result.stderr
    outputs = sorted(path.name for path in out.rglob("*") if path.is_file())
    assert outputs == ["good.mp4", "manifest.jsonl", "prediction_settings.json"]
    assert read_video(out / "video" / "overlay" / "good.mp4")[0].shape == (12, 64, 96, 3)
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [(line["input"], line["status"], line["outputs"]) for line in manifest] == [
        (str(bad), "unreadable", []),
        (str(tmp_path / "in" / "good.mp4"), "predicted", ["video/overlay/good.mp4"]),
    ]
    assert manifest[0]["error"].startswith(f"{bad}: cannot be decoded as a video")


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
    assert len(reference) == 3 * 3 + 2 + 6 + 2  # and the job's manifest.jsonl and prediction_settings.json
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


@pytest.fixture
def a_job(synthetic_root, tmp_path) -> Path:
    """A folder of 11 images of one size, one of another size and two videos of different lengths."""
    inputs = tmp_path / "job"
    for path in sorted((synthetic_root / "leftImg8bit").rglob("*.png")):
        target = inputs / "frames" / path.relative_to(synthetic_root / "leftImg8bit")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    Image.fromarray(moving_rectangles(3, 48, 80)[1]).save(inputs / "odd.png")
    write_video(inputs / "clips" / "long.mp4", moving_rectangles(12, 64, 96))
    write_video(inputs / "clips" / "short.mp4", moving_rectangles(5, 64, 96))
    return inputs


def predict_job(model_dir: Path, inputs: Path, output_dir: Path, *extra: str, config: str | None = None):
    arguments = ["--model_name_or_path", str(model_dir), "--inputs", str(inputs), "--output_dir", str(output_dir)]
    arguments += ["--video_formats", "overlay", "labels", "--batch_size", "2", *extra]
    result = run_script("predict.py", *arguments, config=config, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def job_outputs(output_dir: Path) -> dict[str, bytes | np.ndarray]:
    """Every output file's bytes, a video's decoded frames, and the manifest's lines, by path relative to the job."""
    outputs: dict[str, bytes | np.ndarray] = {}
    for path in sorted(p for p in output_dir.rglob("*") if p.is_file()):
        key = path.relative_to(output_dir).as_posix()
        outputs[key] = read_video(path)[0] if path.suffix == ".mp4" else path.read_bytes()
    return outputs


def manifest_statuses(output_dir: Path) -> dict[str, str]:
    lines = [json.loads(line) for line in (output_dir / "manifest.jsonl").read_text().splitlines()]
    return {Path(line["input"]).name: line["status"] for line in lines}


def assert_same_outputs(expected: dict, actual: dict) -> None:
    assert expected.keys() == actual.keys()
    for key, value in expected.items():
        assert np.array_equal(value, actual[key]) if isinstance(value, np.ndarray) else value == actual[key], key


@pytest.mark.slow
def test_two_processes_share_the_job_and_write_what_one_process_writes(tiny_model_dir, a_job, tmp_path):
    alone = predict_job(tiny_model_dir, a_job, tmp_path / "alone", "--device", "cpu")
    shared = predict_job(tiny_model_dir, a_job, tmp_path / "shared", config="multi_cpu.yaml")
    assert "wrote 12 prediction(s) per format" in alone.stdout and "wrote 12 prediction(s) per format" in shared.stdout
    assert "wrote 2 video(s) of 17 frame(s)" in shared.stdout  # counted over both processes, each input once
    outputs = job_outputs(tmp_path / "alone")
    assert len(outputs) == 12 * 2 + 2 + 17 + 2  # images x formats, overlay videos, label frames, manifest + settings
    assert_same_outputs(outputs, job_outputs(tmp_path / "shared"))  # the manifest too: same inputs, same order
    assert set(manifest_statuses(tmp_path / "shared").values()) == {"predicted"}
    # The bar counts the whole job (12 images + 17 frames), not a process's share.
    bars = [part for part in shared.stderr.replace("\r", "\n").splitlines() if part.startswith("predicting:")]
    assert bars and all("/29 [" in bar for bar in bars) and "29/29 [" in bars[-1]


@pytest.mark.slow
def test_an_interrupted_job_run_again_predicts_only_what_is_missing(tiny_model_dir, a_job, tmp_path):
    reference = tmp_path / "reference"
    predict_job(tiny_model_dir, a_job, reference, "--device", "cpu")

    # The job killed partway: the outputs it had finished are there, a temporary file of one it was writing too.
    resumed = tmp_path / "resumed"
    (resumed / "video").mkdir(parents=True)
    for name in ("color/frames/train", "overlay/frames/train", "video/labels/long"):
        shutil.copytree(reference / name, resumed / name)
    shutil.copy(reference / "prediction_settings.json", resumed)
    (resumed / "overlay" / "odd.png").parent.mkdir(exist_ok=True)
    shutil.copy(reference / "color" / "odd.png", resumed / "color" / "odd.png")  # one format of two done
    (resumed / "overlay" / ".odd.png.abc123.tmp").write_bytes(b"half a PNG")
    kept = {path: path.stat().st_mtime_ns for path in resumed.rglob("*") if path.is_file() and "tmp" not in path.name}

    result = predict_job(tiny_model_dir, a_job, resumed, config="multi_cpu.yaml")
    assert "wrote 6 prediction(s) per format" in result.stdout  # 3 val, 2 test and odd.png (its overlay only)
    assert "6 input(s) already had all their outputs" in result.stdout  # the train images
    assert "wrote 2 video(s) of 17 frame(s)" in result.stdout  # long.mp4 lacked its overlay, short.mp4 all
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in kept.items())  # nothing redone
    statuses = manifest_statuses(resumed)
    assert [name for name, status in statuses.items() if status == "already_complete"] == [
        path.name for path in sorted((a_job / "frames" / "train").rglob("*.png"))
    ]
    assert len(statuses) == 14 and list(statuses.values()).count("predicted") == 8
    outputs = job_outputs(resumed)
    assert outputs.pop("overlay/.odd.png.abc123.tmp") == b"half a PNG"  # another job's temporary file: left alone
    expected = job_outputs(reference)
    outputs.pop("manifest.jsonl"), expected.pop("manifest.jsonl")
    assert_same_outputs(expected, outputs)

    # Other settings are refused beside these outputs; --overwrite redoes every one.
    refused = run_script(
        "predict.py",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--inputs",
        str(a_job),
        "--output_dir",
        str(resumed),
        "--alpha",
        "0.3",
        "--device",
        "cpu",
    )
    assert refused.returncode == 1
    assert f"error: {resumed} holds predictions of other settings (alpha;" in refused.stderr
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in kept.items())
    predict_job(tiny_model_dir, a_job, resumed, "--overwrite", "--device", "cpu")
    assert set(manifest_statuses(resumed).values()) == {"predicted"}
    assert all(path.stat().st_mtime_ns != mtime for path, mtime in kept.items() if path.suffix == ".png")


@pytest.mark.slow
def test_an_unreadable_input_stops_every_process_before_writing_with_one_line(tiny_model_dir, a_job, tmp_path):
    (a_job / "frames" / "notes.png").write_text("not a picture")
    arguments = ["--model_name_or_path", str(tiny_model_dir), "--inputs", str(a_job / "frames")]
    result = run_script("predict.py", *arguments, "--output_dir", str(tmp_path / "out"), config="multi_cpu.yaml")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode != 0
    assert len(errors) == 1 and errors[0].startswith("error: 1 of 12 input(s) cannot be read, nothing was predicted:")
    assert "notes.png: cannot read as an image" in errors[0]
    assert not list((tmp_path / "out").rglob("*.png"))
