"""Bad inputs and faults on the inference, publishing, conversion and split-list side: each is refused with one
clear message naming the culprit (exit status 1 for bad input, 2 for a bad argument) or is made right, never a
traceback, and nothing the user owns is changed or lost.

`test_script_case` runs one script per case (a subprocess, as a user would); `test_api_case` checks the
library-level cases (image processor, split files, repo ids, ...) in-process.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import load_script, run_script, tiny_config
from PIL import Image

from dataset_builders.cityscapes.labels import CLASS_NAMES
from ddrnet_toolkit.inference.segmentation import sliding_window_logits
from modeling_ddrnet import DDRNetForSemanticSegmentation, DDRNetImageProcessor

# --------------------------------------------------------------------------------------------------------------
# Builders of bad inputs


def rgb_png(path: Path, color=(90, 100, 110), size=(128, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def gray16_png(path: Path, value: int = 128 * 257, size=(128, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size[::-1], value, dtype=np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    return path


def truncated_png(path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A PNG header claiming side x side pixels (all PIL reads before refusing), a few bytes on disk."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\0" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")
    )
    return path


def copy_model(env: Env, name: str = "model") -> Path:
    target = env.tmp / name
    shutil.copytree(env.model, target)
    return target


def save_model(path: Path, **config) -> Path:
    torch.manual_seed(0)
    DDRNetForSemanticSegmentation(tiny_config(**config)).save_pretrained(path)
    return path


def slim_checkpoint(path: Path) -> Path:
    from original_fixture import fixture_state_dict, load_fixture

    torch.save(fixture_state_dict(load_fixture()["ddrnet-23-slim"]["segmentation_keys"]), path)
    return path


@dataclass
class Env:
    tmp: Path
    model: Path  # the shared tiny model (read only)
    data: Path  # the shared synthetic Cityscapes (read only)


def snapshot(roots: list[Path], skip: list[Path]) -> dict[str, str]:
    """Every path under `roots` (except under `skip`), with the sha256 of each file's bytes."""
    state = {}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            if any(path == s or path.is_relative_to(s) for s in skip):
                continue
            state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<folder>"
    return state


# --------------------------------------------------------------------------------------------------------------
# Script cases: (id, setup, command line, exit status, stderr pattern, paths the case may write, extra check)


@dataclass
class Case:
    id: str
    setup: Callable[[Env], None]
    command: list[str]  # script and arguments; {tmp}, {model}, {data} are filled in
    status: int
    stderr: str  # a regex that must name the culprit
    writes: tuple[str, ...] = ()  # paths under tmp that the case is expected to create or change
    check: Callable[[Env, object], None] | None = None
    only_without_gpu: bool = False


def nothing(env: Env) -> None:
    pass


PREDICT = ["predict.py", "--model_name_or_path", "{model}", "--device", "cpu", "--output_dir", "{tmp}/out"]


def two_cameras(env: Env) -> None:
    rgb_png(env.tmp / "in" / "cam_left" / "frame_0001.png", color=(200, 30, 30))
    rgb_png(env.tmp / "in" / "cam_right" / "frame_0001.png", color=(30, 30, 200))


def check_two_cameras(env: Env, result) -> None:
    left = np.asarray(Image.open(env.tmp / "out" / "overlay" / "cam_left" / "frame_0001.png"))
    right = np.asarray(Image.open(env.tmp / "out" / "overlay" / "cam_right" / "frame_0001.png"))
    assert not np.array_equal(left, right)  # each output comes from its own input
    assert "wrote 2 prediction(s)" in result.stdout


def same_stem_two_suffixes(env: Env) -> None:
    two_cameras(env)
    rgb_png(env.tmp / "in" / "cam_right" / "frame_0001.jpg")


def check_nothing_predicted(env: Env, result) -> None:
    assert not (env.tmp / "out").exists()


def gray16_input(env: Env) -> None:
    gray16_png(env.tmp / "in" / "gray16.png", value=128 * 257)


def check_gray16_is_gray(env: Env, result) -> None:
    overlay = np.asarray(Image.open(env.tmp / "out" / "overlay" / "gray16.png")).astype(float)
    color = np.asarray(Image.open(env.tmp / "out" / "color" / "gray16.png")).astype(float)
    image = 2 * overlay - color  # overlay = image / 2 + color / 2
    assert np.abs(image - 128).max() <= 2, "the 16-bit image was not read as mid-gray"


def good_and_truncated(env: Env) -> None:
    rgb_png(env.tmp / "in" / "a_good.png")
    truncated_png(env.tmp / "in" / "b_truncated.png")


def check_good_one_written(env: Env, result) -> None:
    assert (env.tmp / "out" / "color" / "a_good.png").is_file()
    assert not (env.tmp / "out" / "color" / "b_truncated.png").exists()
    assert "skipped:" in result.stderr and "wrote 1 prediction(s)" in result.stdout


def text_as_png(env: Env) -> None:
    rgb_png(env.tmp / "in" / "good.png")
    (env.tmp / "in" / "notes.png").write_text("not an image\n")


def undecodable_video(env: Env) -> None:
    (env.tmp / "in").mkdir()
    (env.tmp / "in" / "drive.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))


def bomb(env: Env) -> None:
    (env.tmp / "in").mkdir()
    bomb_png(env.tmp / "in" / "huge.png")


def one_image(env: Env) -> None:
    rgb_png(env.tmp / "in" / "a.png")


def output_dir_is_a_file(env: Env) -> None:
    one_image(env)
    (env.tmp / "out").write_text("my notes\n")


def five_class_model(env: Env) -> None:
    one_image(env)
    save_model(env.tmp / "five", num_labels=5)


def broken_config(env: Env) -> None:
    one_image(env)
    model = copy_model(env)
    (model / "config.json").write_text('{"model_type": "ddrnet",')


PUSH = ["push_to_hub.py", "--model_name_or_path", "{model}", "--hub_dir", "{tmp}/hub"]


def hub_with_neighbour(env: Env) -> None:
    (env.tmp / "hub").mkdir()
    (env.tmp / "important").mkdir()
    (env.tmp / "important" / "thesis.txt").write_text("years of work\n")


def hub_repo_with_user_files(env: Env) -> None:
    repo = env.tmp / "hub" / "org" / "name"
    repo.mkdir(parents=True)
    (repo / "LICENSE").write_text("my license\n")
    (repo / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    (repo / "sample_prediction.png").write_bytes(b"written by an earlier push with --sample_image")


def check_user_files_kept(env: Env, result) -> None:
    repo = env.tmp / "hub" / "org" / "name"
    assert (repo / "LICENSE").read_text() == "my license\n"
    assert (repo / ".gitattributes").read_text() == "*.safetensors filter=lfs\n"
    assert not (repo / "sample_prediction.png").exists()  # a file a push owns, not written this time
    assert (repo / "model.safetensors").is_file()
    assert "kept your own files: .gitattributes, LICENSE" in result.stdout
    assert "removed: sample_prediction.png" in result.stdout


def user_staging_folder(env: Env) -> None:
    staging = env.tmp / "hub" / "org" / "name.staging"
    staging.mkdir(parents=True)
    (staging / "draft.md").write_text("my draft\n")


def check_no_staging_left(env: Env, result) -> None:
    assert (env.tmp / "hub" / "org" / "name.staging" / "draft.md").read_text() == "my draft\n"
    leftovers = [p.name for p in (env.tmp / "hub" / "org").iterdir()]
    assert sorted(leftovers) == ["name", "name.staging"], leftovers


def eval_results_null_and_lists(env: Env) -> None:
    model = copy_model(env)
    results = {
        "mean_iou": None,
        "mean_accuracy": 0.5,
        "overall_accuracy": float("nan"),
        "dataset": "synthetic",
        "per_category_iou": [0.5] * 18 + [None],
        "per_category_accuracy": [0.25] * 19,
    }
    (model / "eval_results.json").write_text(json.dumps(results))


def check_card(env: Env, result) -> None:
    card = (env.tmp / "hub" / "org" / "name" / "README.md").read_text()
    assert "mean IoU **n/a**" in card and "| road | 50.00 |" in card and f"| {CLASS_NAMES[-1]} | n/a |" in card
    assert "model-index" not in card  # no metric to index without a mean IoU
    published = json.loads((env.tmp / "hub" / "org" / "name" / "eval_results.json").read_text())
    assert published["per_category_iou"]["road"] == 0.5 and published["overall_accuracy"] is None


def broken_eval_results(env: Env) -> None:
    (copy_model(env) / "eval_results.json").write_text('{"mean_iou": 0.5,,}')


def broken_preprocessor_config(env: Env) -> None:
    (copy_model(env) / "preprocessor_config.json").write_text("{")


EXPORT = ["export_onnx.py", "--model_name_or_path", "{model}"]


def output_folder(env: Env) -> None:
    (env.tmp / "model.onnx").mkdir()
    (env.tmp / "model.onnx" / "keep.txt").write_text("mine\n")


def model_copy(env: Env) -> None:
    shutil.copytree(env.model, env.tmp / "model")


def model_version(env: Env) -> None:
    """A training run's output folder whose best_model links to a version, as a run leaves it."""
    version = env.tmp / "run" / ".model_versions" / "best_model-x1y2z3"
    shutil.copytree(env.model, version)
    (env.tmp / "run" / "best_model").symlink_to(Path(".model_versions") / version.name)


def huge_flat_png(env: Env) -> None:
    """10000x10000 pixels in a file of a few hundred kilobytes."""
    path = env.tmp / "in" / "huge.png"
    path.parent.mkdir(parents=True)
    Image.new("L", (10_000, 10_000), 128).save(path)


def truncated_matroska(env: Env) -> None:
    import av

    path = env.tmp / "in" / "drive.mkv"
    path.parent.mkdir(parents=True)
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(60):
            frame = np.zeros((48, 64, 3), np.uint8)
            frame[:, index] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])  # Matroska plays what is left


def stale_temporaries(env: Env) -> None:
    """What an export killed with SIGKILL leaves beside its output: a hidden temporary of a process that is gone."""
    (env.tmp / ".model.onnx.999999-abcdefgh.tmp").write_bytes(b"\0" * 1000)


def check_stale_temporaries_removed(env: Env, result) -> None:
    assert sorted(p.name for p in env.tmp.iterdir()) == ["model.onnx"]


LONG_NAME = "m" * 249 + ".onnx"  # 254 bytes: a valid name, longer than any temporary built from it could be


def check_nothing_written(env: Env, result) -> None:
    assert not [path for path in (env.tmp / "out").rglob("*") if path.is_file()]


def check_long_name_written(env: Env, result) -> None:
    assert sorted(p.name for p in env.tmp.iterdir()) == [LONG_NAME]


CONVERT = ["convert_original_checkpoint.py", "--variant", "ddrnet-23-slim", "--output_dir", "{tmp}/converted"]


def older_model_folder(env: Env) -> None:
    slim_checkpoint(env.tmp / "slim.pth")
    old = env.tmp / "converted"
    save_model(old)
    (old / "eval_results.json").write_text(json.dumps({"mean_iou": 0.77}))
    (old / "training_args.json").write_text(json.dumps({"seed": 1}))
    (old / "notes.txt").write_text("my notes\n")


def check_stale_results_removed(env: Env, result) -> None:
    folder = env.tmp / "converted"
    assert not (folder / "eval_results.json").exists() and not (folder / "training_args.json").exists()
    assert (folder / "notes.txt").read_text() == "my notes\n"
    assert "removed the previous model's eval_results.json, training_args.json" in result.stdout
    DDRNetForSemanticSegmentation.from_pretrained(folder)
    assert not [p for p in env.tmp.iterdir() if ".converting-" in p.name]


def tensor_checkpoint(env: Env) -> None:
    torch.save(torch.zeros(3), env.tmp / "tensor.pth")


def cityscapes_tree_with_space(env: Env) -> None:
    root = env.tmp / "cs"
    shutil.copytree(env.data / "leftImg8bit", root / "leftImg8bit")
    shutil.copytree(env.data / "gtFine", root / "gtFine")
    city = next((root / "leftImg8bit" / "train").iterdir())
    city.rename(city.with_name("bad city"))
    label_city = root / "gtFine" / "train" / city.name
    label_city.rename(label_city.with_name("bad city"))


def list_dir_is_a_file(env: Env) -> None:
    (env.tmp / "lists_file").write_text("not a folder\n")


SCRIPT_CASES = [
    # predict.py
    Case(
        "predict-same-stem-in-two-folders-kept-apart",
        two_cameras,
        [*PREDICT, "--inputs", "{tmp}/in"],
        0,
        r"",
        writes=("out",),
        check=check_two_cameras,
    ),
    Case(
        "predict-same-stem-same-folder-refused",
        same_stem_two_suffixes,
        [*PREDICT, "--inputs", "{tmp}/in"],
        1,
        r"cam_right/frame_0001\.jpg and .*cam_right/frame_0001\.png would both be written",
        check=check_nothing_predicted,
    ),
    Case(
        "predict-16-bit-grayscale-is-gray-not-white",
        gray16_input,
        [*PREDICT, "--inputs", "{tmp}/in/gray16.png"],
        0,
        r"",
        writes=("out",),
        check=check_gray16_is_gray,
    ),
    Case(
        "predict-truncated-image-stops-naming-it",
        good_and_truncated,
        [*PREDICT, "--inputs", "{tmp}/in"],
        1,
        r"b_truncated\.png: cannot read as an image .*already written .* are kept",
        writes=("out",),
    ),
    Case(
        "predict-truncated-image-skipped",
        good_and_truncated,
        [*PREDICT, "--inputs", "{tmp}/in", "--on_error", "skip"],
        1,
        r"skipped: .*b_truncated\.png.*\nerror: skipped 1 of 2 input",
        writes=("out",),
        check=check_good_one_written,
    ),
    Case(
        "predict-text-file-named-png",
        text_as_png,
        [*PREDICT, "--inputs", "{tmp}/in"],
        1,
        r"nothing was predicted: .*notes\.png: cannot read as an image",
        check=check_nothing_predicted,
    ),
    Case(
        "predict-undecodable-video-refused",
        undecodable_video,
        [*PREDICT, "--inputs", "{tmp}/in/drive.mp4"],
        1,
        r"nothing was predicted: .*drive\.mp4: cannot be decoded as a video \(Invalid data found",
        check=check_nothing_predicted,
    ),
    Case(
        "predict-decompression-bomb",
        bomb,
        [*PREDICT, "--inputs", "{tmp}/in/huge.png"],
        1,
        r"huge\.png: image too large to decode safely",
    ),
    Case(
        "predict-scales-nan",
        one_image,
        [*PREDICT, "--inputs", "{tmp}/in", "--scales", "1", "nan"],
        2,
        r"--scales must be finite and positive",
    ),
    Case(
        "predict-device-cuda-without-gpu",
        one_image,
        [*PREDICT, "--inputs", "{tmp}/in", "--device", "cuda"],
        2,
        r"--device cuda: no CUDA GPU",
        only_without_gpu=True,
    ),
    Case(
        "predict-output-dir-is-a-file",
        output_dir_is_a_file,
        [*PREDICT, "--inputs", "{tmp}/in"],
        1,
        r"--output_dir .*out: is not a folder",
    ),
    Case(
        "predict-cityscapes-format-on-other-classes",
        five_class_model,
        [
            "predict.py",
            "--model_name_or_path",
            "{tmp}/five",
            "--output_dir",
            "{tmp}/out",
            "--inputs",
            "{tmp}/in",
            "--formats",
            "cityscapes",
        ],
        1,
        r"--formats cityscapes: the model in .*five predicts 5 classes",
        check=check_nothing_predicted,
    ),
    Case(
        "predict-invalid-config-json",
        broken_config,
        ["predict.py", "--model_name_or_path", "{tmp}/model", "--output_dir", "{tmp}/out", "--inputs", "{tmp}/in"],
        1,
        r"model/config\.json: invalid JSON at line 1",
        check=check_nothing_predicted,
    ),
    # push_to_hub.py
    Case(
        "push-repo-id-escaping-hub-dir",
        hub_with_neighbour,
        [*PUSH, "--repo_id", "../important"],
        2,
        r"--repo_id '\.\./important' is not a Hub model id",
    ),
    Case(
        "push-repo-id-dot-dot-name",
        hub_with_neighbour,
        [*PUSH, "--repo_id", "me/.."],
        2,
        r"--repo_id 'me/\.\.' is not a Hub model id",
    ),
    Case(
        "push-keeps-files-it-does-not-own",
        hub_repo_with_user_files,
        [*PUSH, "--repo_id", "org/name"],
        0,
        r"",
        writes=("hub/org/name",),
        check=check_user_files_kept,
    ),
    Case(
        "push-leaves-a-user-staging-folder-alone",
        user_staging_folder,
        [*PUSH, "--repo_id", "org/name"],
        0,
        r"",
        writes=("hub/org/name",),
        check=check_no_staging_left,
    ),
    Case(
        "push-mean-iou-null-and-per-class-lists",
        eval_results_null_and_lists,
        ["push_to_hub.py", "--model_name_or_path", "{tmp}/model", "--hub_dir", "{tmp}/hub", "--repo_id", "org/name"],
        0,
        r"",
        writes=("hub",),
        check=check_card,
    ),
    Case(
        "push-invalid-eval-results-json",
        broken_eval_results,
        ["push_to_hub.py", "--model_name_or_path", "{tmp}/model", "--hub_dir", "{tmp}/hub", "--repo_id", "org/name"],
        1,
        r"model/eval_results\.json: invalid JSON at line 1",
    ),
    Case(
        "push-invalid-preprocessor-config",
        broken_preprocessor_config,
        ["push_to_hub.py", "--model_name_or_path", "{tmp}/model", "--hub_dir", "{tmp}/hub", "--repo_id", "org/name"],
        1,
        r"model/preprocessor_config\.json: invalid JSON",
    ),
    # Round 2: no writer writes over a model's files; temporaries of killed writers go; long names work.
    Case(
        "export-onto-the-models-own-weights",
        model_copy,
        [*EXPORT[:2], "{tmp}/model", "--output", "{tmp}/model/model.safetensors"],
        1,
        r"--output .*model/model\.safetensors would replace model\.safetensors of the model in .*model",
    ),
    Case(
        "export-into-a-runs-model-version",
        model_version,
        [*EXPORT[:2], "{tmp}/run/best_model", "--output", "{tmp}/run/best_model/model.onnx"],
        1,
        r"lies in .*best_model-x1y2z3, a model version that its training run replaces",
    ),
    Case(
        "export-removes-a-killed-exports-temporaries",
        stale_temporaries,
        [*EXPORT, "--output", "{tmp}/model.onnx"],
        0,
        r"^",  # success: the check looks at the folder
        writes=("model.onnx", ".model.onnx.999999-abcdefgh.tmp"),
        check=check_stale_temporaries_removed,
    ),
    Case(
        "export-to-a-254-byte-file-name",
        nothing,
        [*EXPORT, "--output", "{tmp}/" + LONG_NAME],
        0,
        r"^",  # success: the check looks at the folder
        writes=(LONG_NAME,),
        check=check_long_name_written,
    ),
    Case(
        "predict-image-above-the-pixel-limit",
        huge_flat_png,
        [*PREDICT, "--inputs", "{tmp}/in"],
        1,
        r"huge\.png: 10000x10000 is 100\.0 megapixels, more than the limit of 16777216 .*--max_pixels raises it",
    ),
    Case(
        "predict-truncated-matroska",
        truncated_matroska,
        [*PREDICT, "--inputs", "{tmp}/in"],
        1,
        r"drive\.mkv: cannot be decoded as a video \(it ends after \d+ of the 60 frames its container announces",
        writes=("out",),
        check=check_nothing_written,
    ),
    # export_onnx.py
    Case(
        "export-output-is-a-folder",
        output_folder,
        [*EXPORT, "--output", "{tmp}/model.onnx"],
        1,
        r"--output .*model\.onnx is a folder",
    ),
    Case(
        "export-check-size-zero",
        nothing,
        [*EXPORT, "--output", "{tmp}/m.onnx", "--check_size", "0", "0"],
        2,
        r"--check_size must be positive",
    ),
    Case(
        "export-opset-beyond-torch",
        nothing,
        [*EXPORT, "--output", "{tmp}/m.onnx", "--opset", "99"],
        2,
        r"--opset must be between 17 and \d+",
    ),
    # convert_original_checkpoint.py
    Case(
        "convert-into-an-older-model-refused",
        older_model_folder,
        [*CONVERT, "--checkpoint", "{tmp}/slim.pth"],
        1,
        r"--output_dir .*converted already holds a model .*--overwrite_output_dir",
    ),
    Case(
        "convert-overwrite-removes-stale-results",
        older_model_folder,
        [*CONVERT, "--checkpoint", "{tmp}/slim.pth", "--overwrite_output_dir"],
        0,
        r"",
        writes=("converted",),
        check=check_stale_results_removed,
    ),
    Case(
        "convert-pth-holding-a-tensor",
        tensor_checkpoint,
        [*CONVERT, "--checkpoint", "{tmp}/tensor.pth"],
        1,
        r"tensor\.pth holds a Tensor, not a state_dict",
    ),
    # make_lists.py
    Case(
        "make-lists-space-in-folder-name",
        cityscapes_tree_with_space,
        ["make_lists.py", "--data_dir", "{tmp}/cs"],
        1,
        r"bad city/.*: the path holds whitespace",
    ),
    Case(
        "make-lists-list-dir-is-a-file",
        list_dir_is_a_file,
        ["make_lists.py", "--data_dir", "{data}", "--list_dir", "{tmp}/lists_file"],
        1,
        r"list folder .*lists_file is a file",
    ),
]


@pytest.mark.parametrize("case", SCRIPT_CASES, ids=[case.id for case in SCRIPT_CASES])
def test_script_case(case: Case, tmp_path, tiny_model_dir, synthetic_root):
    if case.only_without_gpu and torch.cuda.is_available():
        pytest.skip("needs a machine without a GPU")
    env = Env(tmp_path, tiny_model_dir, synthetic_root)
    case.setup(env)
    roots = [tmp_path, tiny_model_dir, synthetic_root]
    skip = [tmp_path / path for path in case.writes]
    before = snapshot(roots, skip)
    arguments = [part.format(tmp=tmp_path, model=tiny_model_dir, data=synthetic_root) for part in case.command]
    result = run_script(*arguments, timeout=300)
    stderr = "\n".join(line for line in re.split(r"[\r\n]", result.stderr) if line and "%|" not in line)  # no bars
    assert result.returncode == case.status, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert re.search(case.stderr, stderr.strip(), re.DOTALL), stderr[-3000:]
    if case.status:
        assert len([line for line in stderr.splitlines() if line.startswith(("error:", "usage:"))]) >= 1
    assert snapshot(roots, skip) == before, "a file the user owned was changed, or something was left behind"
    if case.check is not None:
        case.check(env, result)


# --------------------------------------------------------------------------------------------------------------
# Library-level cases: (id, setup building the bad input and returning the call that must fail, exception type,
# pattern its message must match)


def processor_call(images, **kwargs) -> Callable:
    return lambda: DDRNetImageProcessor()(images, return_tensors="pt", **kwargs)


def processor_pixels(images, **kwargs) -> torch.Tensor:
    return DDRNetImageProcessor(**kwargs)(images, return_tensors="pt")["pixel_values"]


def photo(dtype=np.uint8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (32, 48, 3)).astype(dtype)


def split_file(tmp: Path, text: bytes) -> Callable:
    from dataset_builders.cityscapes import read_split_file

    (tmp / "data").mkdir()
    (tmp / "secret.png").write_bytes(b"outside the data folder")
    (tmp / "lists").mkdir()
    (tmp / "lists" / "val.lst").write_bytes(text.replace(b"SECRET", str(tmp / "secret.png").encode()))
    return lambda: read_split_file(tmp / "lists" / "val.lst", tmp / "data", with_labels=True)


def publish_call(tmp: Path, model: Path, repo_id: str) -> Callable:
    from ddrnet_toolkit.hub import publish

    return lambda: publish(model, tmp / "hub", repo_id)


def eval_list_of_wrong_length(tmp: Path, model: Path) -> Callable:
    folder = tmp / "model"
    shutil.copytree(model, folder)
    (folder / "eval_results.json").write_text(json.dumps({"mean_iou": 0.5, "per_category_iou": [0.5] * 5}))
    return publish_call(tmp, folder, "org/name")


def predict_module():
    return load_script("predict")


def parse_predict(*arguments: str) -> Callable:
    base = ["--model_name_or_path", "m", "--inputs", "i", "--output_dir", "o"]
    return lambda: predict_module().parse_args([*base, *arguments])


def text_input(tmp: Path) -> Callable:
    (tmp / "notes.txt").write_text("hello\n")
    from ddrnet_toolkit.inference.inputs import find_inputs

    return lambda: find_inputs([str(tmp / "notes.txt")])


def list_checkpoint(tmp: Path) -> Callable:
    from modeling_ddrnet.convert_original import load_original_checkpoint

    torch.save([torch.zeros(1)], tmp / "list.pth")
    return lambda: load_original_checkpoint(tmp / "list.pth")


def output_under_a_file(tmp: Path) -> Callable:
    from ddrnet_toolkit.files import writable_file

    (tmp / "file").write_text("x")
    return lambda: writable_file(tmp / "file" / "model.onnx", "--output")


def sample_image_not_an_image(tmp: Path, model: Path) -> Callable:
    from ddrnet_toolkit.hub import publish

    (tmp / "street.png").write_text("not a picture\n")
    return lambda: publish(model, tmp / "hub", "org/name", sample_image=tmp / "street.png")


def org_folder_linked_outside(tmp: Path, model: Path) -> Callable:
    (tmp / "elsewhere").mkdir()
    (tmp / "elsewhere" / "name").mkdir()
    (tmp / "elsewhere" / "name" / "mine.txt").write_text("mine\n")
    (tmp / "hub").mkdir()
    (tmp / "hub" / "org").symlink_to(tmp / "elsewhere")
    return publish_call(tmp, model, "org/name")


def missing_model(tmp: Path) -> Callable:
    from ddrnet_toolkit.model_folder import load_trained_model

    return lambda: load_trained_model(tmp / "nope")


API_CASES = [
    (
        "processor-images-of-different-sizes-without-resizing",
        lambda tmp, model: processor_call([Image.new("RGB", (40, 30)), Image.new("RGB", (50, 20))]),
        ValueError,
        r"Images of different sizes \(20x50, 30x40\) cannot be stacked into one tensor: pass do_resize=True",
    ),
    (
        "processor-tensors-of-different-sizes-without-resizing",
        lambda tmp, model: processor_call([torch.zeros(3, 30, 40, dtype=torch.uint8), torch.zeros(3, 20, 50)]),
        ValueError,
        r"Images of different sizes .* cannot be stacked",
    ),
    (
        "processor-target-size-zero",
        lambda tmp, model: (
            lambda: DDRNetImageProcessor().post_process_semantic_segmentation(
                SimpleNamespace(logits=torch.zeros(1, 19, 4, 4)), target_sizes=[(0, 5)]
            )
        ),
        ValueError,
        r"A target size is \(height, width\) of two positive integers, got \(0, 5\)",
    ),
    (
        "processor-target-size-negative-tensor",
        lambda tmp, model: (
            lambda: DDRNetImageProcessor().post_process_semantic_segmentation(
                SimpleNamespace(logits=torch.zeros(1, 19, 4, 4)), target_sizes=torch.tensor([[-3, 5]])
            )
        ),
        ValueError,
        r"got \[-3, 5\]",
    ),
    (
        "sliding-window-stride-larger-than-window",
        lambda tmp, model: (
            lambda: sliding_window_logits(
                lambda pixels: pixels[:, :2], torch.zeros(1, 3, 16, 16), window=(8, 8), stride=(12, 12)
            )
        ),
        ValueError,
        r"the stride \(12, 12\) must be positive and at most the window \(8, 8\)",
    ),
    (
        "processor-int64-pixels-refused",
        lambda tmp, model: processor_call(photo(np.int64)),
        ValueError,
        r"Unsupported pixel dtype int64",
    ),
    (
        "processor-int32-tensor-refused",
        lambda tmp, model: processor_call(torch.zeros(3, 8, 8, dtype=torch.int32)),
        ValueError,
        r"Unsupported pixel dtype torch\.int32",
    ),
    (
        "processor-rgb-label-map-refused",
        lambda tmp, model: processor_call(photo(), segmentation_maps=np.zeros((32, 48, 3), np.uint8)),
        ValueError,
        r"Segmentation map 0 has shape \(32, 48, 3\).*\(32, 48\)",
    ),
    (
        "processor-label-map-of-another-size-refused",
        lambda tmp, model: processor_call(photo(), segmentation_maps=np.zeros((16, 48), np.uint8)),
        ValueError,
        r"Segmentation map 0 has shape \(16, 48\), but its image has shape \(32, 48\)",
    ),
    (
        "processor-tensor-label-map-of-another-size-refused",
        lambda tmp, model: processor_call(
            torch.zeros(1, 3, 32, 48, dtype=torch.uint8), segmentation_maps=torch.zeros(1, 32, 40)
        ),
        ValueError,
        r"shape \(32, 40\), but its image has shape \(32, 48\)",
    ),
    (
        "split-file-absolute-path",
        lambda tmp, model: split_file(tmp, b"SECRET SECRET\n"),
        "CityscapesDataError",
        r"val\.lst:1: '/.*secret\.png' is not a path inside the data folder",
    ),
    (
        "split-file-dot-dot",
        lambda tmp, model: split_file(tmp, b"\n../secret.png ../secret.png\n"),
        "CityscapesDataError",
        r"val\.lst:2: '\.\./secret\.png' is not a path inside the data folder",
    ),
    (
        "split-file-not-utf8",
        lambda tmp, model: split_file(tmp, b"\n\xff\xfe.png c.png\n"),
        "CityscapesDataError",
        r"val\.lst:2: not UTF-8 text",
    ),
    (
        "repo-id-backslash",
        lambda tmp, model: publish_call(tmp, model, "me\\evil"),
        "UserInputError",
        r"--repo_id 'me\\\\evil' is not a Hub model id",
    ),
    (
        "repo-id-empty-part",
        lambda tmp, model: publish_call(tmp, model, "me/"),
        "UserInputError",
        r"--repo_id 'me/' is not a Hub model id",
    ),
    (
        "repo-id-absolute",
        lambda tmp, model: publish_call(tmp, model, str(tmp / "abs")),
        "UserInputError",
        r"is not a Hub model id",
    ),
    (
        "repo-id-without-org",
        lambda tmp, model: publish_call(tmp, model, "name"),
        "UserInputError",
        r"expected ORG/NAME",
    ),
    (
        "eval-results-list-of-wrong-length",
        eval_list_of_wrong_length,
        "UserInputError",
        r"eval_results\.json: per_category_iou holds 5 values, but the model has 19 classes",
    ),
    ("predict-scales-inf", lambda tmp, model: parse_predict("--scales", "inf"), SystemExit, r"^2$"),
    ("predict-alpha-out-of-range", lambda tmp, model: parse_predict("--alpha", "7"), SystemExit, r"^2$"),
    (
        "predict-text-input-refused",
        lambda tmp, model: text_input(tmp),
        "UserInputError",
        r"notes\.txt: not an image file .*suffix \.txt",
    ),
    (
        "convert-pth-holding-a-list",
        lambda tmp, model: list_checkpoint(tmp),
        "CheckpointConversionError",
        r"list\.pth holds a list, not a state_dict",
    ),
    (
        "export-output-under-a-file",
        lambda tmp, model: output_under_a_file(tmp),
        "UserInputError",
        r"--output .*file/model\.onnx: its folder .*file: is not a folder",
    ),
    (
        "push-sample-image-not-an-image",
        sample_image_not_an_image,
        "UserInputError",
        r"street\.png: cannot read as an image",
    ),
    (
        "push-repo-folder-resolving-outside-hub-dir",
        org_folder_linked_outside,
        "UserInputError",
        r"--repo_id 'org/name': .*hub/org/name resolves to .*elsewhere/name, outside --hub_dir",
    ),
    (
        "missing-model-folder",
        lambda tmp, model: missing_model(tmp),
        "UserInputError",
        r"model folder not found: .*nope",
    ),
]


def exception_type(name):
    if not isinstance(name, str):
        return name
    from dataset_builders.cityscapes import CityscapesDataError
    from ddrnet_toolkit.errors import UserInputError
    from modeling_ddrnet.convert_original import CheckpointConversionError

    return {
        "CityscapesDataError": CityscapesDataError,
        "UserInputError": UserInputError,
        "CheckpointConversionError": CheckpointConversionError,
    }[name]


@pytest.mark.parametrize(("setup", "error", "pattern"), [case[1:] for case in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_case(setup, error, pattern, tmp_path, tiny_model_dir, capsys):
    call = setup(tmp_path, tiny_model_dir)
    roots = [tmp_path, tiny_model_dir]
    before = snapshot(roots, [])
    with pytest.raises(exception_type(error)) as caught:
        call()
    assert re.search(pattern, str(caught.value)), str(caught.value)
    if error is SystemExit:
        assert "error: --" in capsys.readouterr().err
    assert snapshot(roots, []) == before, "a file the user owned was changed, or something was left behind"


# --------------------------------------------------------------------------------------------------------------
# The image processor reads pixel values by their type, the same way on its PIL and tensor paths
