"""The Gradio demo that push_to_hub writes into a repo folder: the files and card keys a Space needs, `segment`
called directly, and the page served by `python app.py` in a real browser (headless Chromium driven by Playwright).

The browser test needs Chromium and the `playwright` package; it fails, rather than skips, when either is missing,
so that CI cannot pass without running it. DDRNET_CHROMIUM names the browser (default /usr/bin/chromium, Debian's
`chromium` package); DDRNET_TEST_ARTIFACTS names a folder that receives the page's screenshot (space_app.png).
"""

from __future__ import annotations

import configparser
import importlib.util
import io
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, load_script
from huggingface_hub import ModelCard
from packaging.requirements import Requirement
from packaging.version import Version
from PIL import Image

from dataset_builders.label_space import default_palette
from ddrnet_toolkit.errors import UserInputError
from ddrnet_toolkit.hub import publish
from ddrnet_toolkit.hub.model_card import model_card
from ddrnet_toolkit.hub.space_app import APP_TEMPLATE, PUSH_MARKER
from ddrnet_toolkit.inference.visualization import model_palette, overlay
from modeling_ddrnet import DDRNetForSemanticSegmentation, DDRNetImageProcessor

CHROMIUM = os.environ.get("DDRNET_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS_ENV = "DDRNET_TEST_ARTIFACTS"
REPO_ID = "demo-org/ddrnet-space"
PROJECT_PACKAGES = ("modeling_ddrnet", "ddrnet_toolkit", "dataset_builders")
SERVER_START_TIMEOUT_S = 180  # gradio, torch and transformers import slowly on a busy CI machine
BROWSER_TIMEOUT_MS = 60_000

# Runs app.py as `python app.py` would, from a process that cannot import this project: the editable install's
# finder and the checkout are taken off the import path first, and a project package that is still importable
# stops the run. The repo folder holds the remote code, which transformers imports under its own module names.
LAUNCHER = f"""
import runpy, sys
sys.path = [p for p in sys.path if p not in ("", ".", {str(REPO_ROOT)!r})]
sys.meta_path = [finder for finder in sys.meta_path if "__editable__" not in repr(finder)]
for name in {PROJECT_PACKAGES!r}:
    try:
        __import__(name)
    except ImportError:
        continue
    sys.exit(f"the project package {{name}} is importable; the app must run without it")
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def pushed(tmp_path_factory, synthetic_root, tiny_model_dir) -> SimpleNamespace:
    """A tiny model with evaluation results, pushed with push_to_hub.py's `main` (a sample image and a wide example
    image), and an upload of an odd size (not a multiple of the network's stride of 8)."""
    root = tmp_path_factory.mktemp("space_app")
    model_dir = root / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    results = {"mean_iou": 0.25, "split": "validation", "dataset": "synthetic_cityscapes"}
    (model_dir / "eval_results.json").write_text(json.dumps(results))
    sample = sorted((synthetic_root / "leftImg8bit" / "val").glob("*/*.png"))[0]
    wide = root / "wide.png"
    Image.open(sample).convert("RGB").resize((1300, 250)).save(wide)
    upload = root / "upload.png"
    Image.open(sorted((synthetic_root / "leftImg8bit" / "val").glob("*/*.png"))[1]).convert("RGB").crop(
        (0, 0, 125, 61)
    ).save(upload)
    hub = root / "hub"
    arguments = ["--model_name_or_path", str(model_dir), "--hub_dir", str(hub), "--repo_id", REPO_ID]
    arguments += ["--sample_image", str(sample), "--example_images", str(wide), str(sample)]  # sample twice: once
    assert load_script("push_to_hub").main(arguments) == 0
    return SimpleNamespace(repo=hub / REPO_ID, model_dir=model_dir, sample=sample, upload=upload)


@pytest.fixture(scope="module")
def app(pushed) -> Iterator[ModuleType]:
    """The pushed app.py, imported as a module (this does not start a server)."""
    spec = importlib.util.spec_from_file_location("pushed_space_app", pushed.repo / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: its dataclass looks its module up while being defined
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def reference_class_ids(model_dir: Path, image: np.ndarray) -> np.ndarray:
    """The project's own model and processor on `image`: the class ids the app must show."""
    model = DDRNetForSemanticSegmentation.from_pretrained(model_dir).eval()
    processor = DDRNetImageProcessor.from_pretrained(model_dir)
    with torch.no_grad():
        outputs = model(**processor(Image.fromarray(image), return_tensors="pt"))
    return processor.post_process_semantic_segmentation(outputs, target_sizes=[image.shape[:2]])[0].numpy()


def test_push_writes_the_demo_and_the_space_card(pushed):
    repo = pushed.repo
    assert (repo / "app.py").read_bytes() == APP_TEMPLATE.read_bytes()
    assert PUSH_MARKER in (repo / "app.py").read_text().splitlines()[1]

    lines = (repo / "requirements.txt").read_text().splitlines()
    assert PUSH_MARKER in lines[0]
    requirements = {Requirement(line).name: Requirement(line) for line in lines[1:]}
    assert set(requirements) == {"gradio", "torch", "transformers", "safetensors", "numpy", "pillow"}
    installed_gradio = Version(importlib.metadata.version("gradio"))
    assert installed_gradio in requirements["gradio"].specifier, "the tests run a Gradio the requirements exclude"
    # The remote code needs what the package needs: the shared lower bounds are setup.cfg's.
    setup = configparser.ConfigParser()
    setup.read(REPO_ROOT / "setup.cfg")
    package_requirements = [Requirement(line) for line in setup["options"]["install_requires"].split("\n") if line]
    for requirement in package_requirements:
        if requirement.name in requirements:
            assert requirements[requirement.name].specifier == requirement.specifier, requirement.name

    card = ModelCard.load(repo / "README.md")
    data = card.data.to_dict()
    assert (data["sdk"], data["app_file"]) == ("gradio", "app.py")
    assert Version(data["sdk_version"]) in requirements["gradio"].specifier
    metric = data["model-index"][0]["results"][0]["metrics"][0]  # the model metadata is still whole
    assert (metric["type"], metric["value"]) == ("mean_iou", 0.25)
    assert data["pipeline_tag"] == "image-segmentation" and "python app.py" in card.text

    # The sample image first, then the wide one scaled to 1024 pixels; the sample given twice is bundled once.
    examples = sorted(p.name for p in repo.glob("ddrnet_example_*"))
    assert examples == ["ddrnet_example_1.jpg", "ddrnet_example_2.jpg"]
    assert Image.open(repo / "ddrnet_example_1.jpg").size == Image.open(pushed.sample).size
    assert Image.open(repo / "ddrnet_example_2.jpg").size == (1024, 197)


def test_push_keeps_an_app_and_requirements_of_the_users(tiny_model_dir, tmp_path):
    hub = tmp_path / "hub"
    repo = hub / "org" / "name"
    repo.mkdir(parents=True)
    (repo / "app.py").write_text("print('my own demo')\n")
    (repo / "requirements.txt").write_text("streamlit\n")
    _, first = publish(tiny_model_dir, hub, "org/name")
    assert first.kept == ["app.py", "requirements.txt"] and "app.py" not in first.added
    _, second = publish(tiny_model_dir, hub, "org/name")
    assert second.kept == ["app.py", "requirements.txt"] and not second.removed and not second.modified
    assert (repo / "app.py").read_text() == "print('my own demo')\n"
    assert (repo / "requirements.txt").read_text() == "streamlit\n"

    # Once the user's files are gone, the push writes its own; it replaces them while they carry its marker line.
    (repo / "app.py").unlink()
    (repo / "requirements.txt").unlink()
    _, third = publish(tiny_model_dir, hub, "org/name")
    assert third.added == ["app.py", "requirements.txt"]
    (repo / "app.py").write_text((repo / "app.py").read_text() + "# edited\n")
    _, fourth = publish(tiny_model_dir, hub, "org/name")
    assert fourth.modified == ["app.py"] and (repo / "app.py").read_bytes() == APP_TEMPLATE.read_bytes()
    # Without the marker line, an edited app.py is the user's from then on.
    edited = "".join(line for line in APP_TEMPLATE.read_text().splitlines(True) if PUSH_MARKER not in line)
    (repo / "app.py").write_text(edited)
    _, fifth = publish(tiny_model_dir, hub, "org/name")
    assert fifth.kept == ["app.py"] and (repo / "app.py").read_text() == edited


def test_push_refuses_more_example_images_than_the_repo_should_hold(tiny_model_dir, synthetic_root, tmp_path):
    images = sorted((synthetic_root / "leftImg8bit").glob("*/*/*.png"))[:5]
    assert len(images) == 5
    with pytest.raises(UserInputError, match="at most 4"):
        publish(tiny_model_dir, tmp_path / "hub", "org/name", images[0], example_images=images[1:])
    assert not (tmp_path / "hub").exists()  # refused before the hub folder is touched


def test_segment_shows_the_models_prediction_at_the_images_size(app, pushed):
    image = np.asarray(Image.open(pushed.upload).convert("RGB"))
    blended, mask, table = app.segment(image, 0.5)
    assert blended.shape == mask.shape == image.shape == (61, 125, 3)

    class_ids = reference_class_ids(pushed.model_dir, image)
    config = DDRNetForSemanticSegmentation.config_class.from_pretrained(pushed.model_dir)
    palette = model_palette(pushed.repo, config.id2label)  # the card's colours (Cityscapes here)
    np.testing.assert_array_equal(mask, palette[class_ids])
    np.testing.assert_array_equal(blended, overlay(image, class_ids, 0.5, palette))

    counts = np.bincount(class_ids.ravel(), minlength=config.num_labels)
    present = [config.id2label[i] for i in np.flatnonzero(counts)]
    assert sorted(name for name, _ in table) == sorted(present)
    shares = [share for _, share in table]
    assert shares == sorted(shares, reverse=True) and abs(sum(shares) - 100) <= 0.005 * len(shares) + 1e-9
    assert table[0][1] == round(100 * counts.max() / counts.sum(), 2)

    np.testing.assert_array_equal(app.segment(image, 0.0)[0], image)
    np.testing.assert_array_equal(app.segment(image, 1.0)[0], mask)
    rgba = Image.fromarray(image).convert("RGBA")
    np.testing.assert_array_equal(app.segment(rgba, 0.5)[1], mask)
    gray = np.asarray(Image.fromarray(image).convert("L"))
    assert app.segment(gray, 0.5)[0].shape == image.shape
    assert app.segment(None, 0.5) == (None, None, [])
    # Wider than the model is run at (MAX_INFERENCE_SIDE): segmented smaller, shown at the image's own size.
    wide = np.asarray(Image.fromarray(image).resize((app.MAX_INFERENCE_SIDE + 52, 24)))
    wide_overlay, wide_mask, wide_table = app.segment(wide, 0.5)
    assert wide_overlay.shape == wide_mask.shape == wide.shape and wide_table


def test_app_reads_16_bit_uploads_by_their_bit_depth_and_bounds_the_work(app, tmp_path):
    """A 16-bit grayscale upload is mid-grey, as predict.py reads it, not clipped to white; an image segmented
    smaller than it is gets its class ids scaled up, and one too large for the demo is refused with the limit."""
    gray16 = tmp_path / "gray16.png"
    Image.fromarray(np.full((30, 40), 32768, dtype=np.uint16)).save(gray16)
    with Image.open(gray16) as image:
        assert image.mode.startswith("I")
        np.testing.assert_array_equal(app.as_rgb(image), np.full((30, 40, 3), 128, np.uint8))
        np.testing.assert_array_equal(app.as_rgb(np.asarray(image)), np.full((30, 40, 3), 128, np.uint8))
    tall = np.zeros((app.MAX_INFERENCE_SIDE + 40, 16, 3), np.uint8)
    assert app.predict_class_ids(tall).shape == (app.MAX_INFERENCE_SIDE + 40, 16)
    with pytest.raises(app.gr.Error, match=r"41 megapixels; this demo segments images of at most 40"):
        app.segment(Image.new("RGB", (6_400, 6_400)), 0.5)


def test_class_names_enter_the_card_as_text(tiny_model_dir, tmp_path):
    """Names from a model's own files are escaped: no HTML, no table cell split, no line break."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    names = {str(i): f"class {i}" for i in range(19)}
    names["3"] = "<script>alert(1)</script> | x"
    (folder / "config.json").write_text(json.dumps({**config, "id2label": names, "label2id": None}))
    repo, _ = publish(folder, tmp_path / "hub", "org/escaped")
    card = (repo / "README.md").read_text()
    assert "<script>" not in card and "&lt;script&gt;alert(1)&lt;/script&gt; \\| x" in card
    assert ModelCard.load(repo / "README.md").data.to_dict()["pipeline_tag"] == "image-segmentation"


def test_app_colours_and_examples(app, pushed, tmp_path):
    names = ["background", "lane", "kerb"]
    # Without labels.json and with other classes than Cityscapes': the training project's default colours.
    np.testing.assert_array_equal(app.class_colors(names, tmp_path), default_palette()[:3])
    (tmp_path / "labels.json").write_text(json.dumps({"id2label": dict(enumerate(names)), "colors": [[1, 2, 3]] * 3}))
    np.testing.assert_array_equal(app.class_colors(names, tmp_path), [[1, 2, 3]] * 3)
    (tmp_path / "labels.json").write_text(json.dumps({"colors": [[1, 2, 3]]}))  # not one per class: ignored
    np.testing.assert_array_equal(app.class_colors(names, tmp_path), default_palette()[:3])
    assert [Path(p).name for p in app.example_images(pushed.repo)] == ["ddrnet_example_1.jpg", "ddrnet_example_2.jpg"]
    assert app.card_title(pushed.repo) == REPO_ID


class RecordingProxy(socketserver.ThreadingTCPServer):
    """A local HTTP(S) proxy that answers nothing and records every connection: the app's environment points its
    proxy settings here, so any attempt to reach the network (analytics, version checks, the Hub) is counted."""

    daemon_threads = True

    def __init__(self) -> None:
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), socketserver.StreamRequestHandler)

    def finish_request(self, request, client_address) -> None:
        request.settimeout(5)
        try:
            self.requests.append(request.recv(200).decode("latin-1").split("\r\n")[0])
        except OSError as error:
            self.requests.append(f"connection without a request line ({error})")


@pytest.fixture
def recording_proxy() -> Iterator[RecordingProxy]:
    proxy = RecordingProxy()
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_addresses(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp{,6} write them) that listen on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if int(hex_port, 16) == port and state == "0A":  # 0A: LISTEN
                found.append(address)
    return found


@pytest.fixture
def server(pushed, recording_proxy, tmp_path) -> Iterator[SimpleNamespace]:
    """`python app.py` in the pushed repo folder, on a free loopback port, with a clean environment that cannot
    import this project; waits until the page answers and always stops the server."""
    port = free_port()
    proxy = f"http://127.0.0.1:{recording_proxy.server_address[1]}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        **{name: proxy for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")},
        **{name: "127.0.0.1,localhost" for name in ("NO_PROXY", "no_proxy")},
    }
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-I", "-c", LAUNCHER, "app.py", "--port", str(port)],
            cwd=pushed.repo,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # this process's proxies don't apply
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"app.py exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                with direct.open(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app.py did not answer on {url} in {SERVER_START_TIMEOUT_S} s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield SimpleNamespace(url=url, port=port, log=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def chromium_browser(playwright):
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's `chromium` package (apt-get install chromium) or set "
            "DDRNET_CHROMIUM to the browser's path. The demo's browser test does not skip."
        )
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)


def picture(page, selector: str) -> Image.Image:
    """The image an `<img>` on the page shows, fetched from its `src` through the page's session."""
    source = page.locator(selector).get_attribute("src")
    response = page.request.get(source)
    assert response.ok, f"{source}: HTTP {response.status}"
    return Image.open(io.BytesIO(response.body())).convert("RGB")


def wait_for_image_size(page, selector: str, size: tuple[int, int]) -> None:
    """Until the `<img>` matching `selector` has loaded a picture of `size` (width, height)."""
    page.wait_for_function(
        "([selector, width, height]) => { const image = document.querySelector(selector);"
        " return image !== null && image.complete && image.naturalWidth === width && image.naturalHeight === height; }",
        arg=[selector, *size],
        timeout=BROWSER_TIMEOUT_MS,
    )


@pytest.mark.slow
def test_the_app_serves_a_page_that_segments_an_upload(app, pushed, server, recording_proxy, tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        pytest.fail(f"the playwright package is missing ({error}): pip install playwright (see the dev extra)")
    screenshot = tmp_path / "space_app.png"
    upload = np.asarray(Image.open(pushed.upload).convert("RGB"))
    upload_size = (upload.shape[1], upload.shape[0])
    with sync_playwright() as playwright:
        browser = chromium_browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.set_default_timeout(BROWSER_TIMEOUT_MS)
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(server.url)
            page.locator("#image input[type=file]").set_input_files(str(pushed.upload))
            # The table's data rows (by their ARIA roles: Gradio's table draws them as a virtual list of divs).
            rows = page.locator("#class-table [role=row]").filter(has=page.locator("[role=gridcell]"))
            try:
                wait_for_image_size(page, "#overlay img", upload_size)
                wait_for_image_size(page, "#mask img", upload_size)
                rows.first.wait_for()
            finally:  # the page as it is, also when it never showed the results
                page.screenshot(path=str(screenshot), full_page=True)
                if os.environ.get(ARTIFACTS_ENV):
                    Path(os.environ[ARTIFACTS_ENV]).mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(screenshot, Path(os.environ[ARTIFACTS_ENV]) / screenshot.name)

            blended = np.asarray(picture(page, "#overlay img"))
            mask = np.asarray(picture(page, "#mask img"))
            table = [[cell.strip() for cell in row.locator("[role=gridcell]").all_inner_texts()] for row in rows.all()]

            # A sample image (the first example) replaces the upload; full opacity shows the mask alone.
            page.locator("#examples button.gallery-item").first.click()
            wait_for_image_size(page, "#overlay img", Image.open(pushed.sample).size)
            half_opaque = page.locator("#overlay img").get_attribute("src")
            page.locator("#opacity input[type=number]").fill("1")
            page.locator("#opacity input[type=number]").press("Enter")
            page.wait_for_function(
                "source => document.querySelector('#overlay img').src !== source",
                arg=half_opaque,
                timeout=BROWSER_TIMEOUT_MS,
            )
            opaque = np.asarray(picture(page, "#overlay img"))
            sample_mask = np.asarray(picture(page, "#mask img"))
        finally:
            browser.close()

    assert blended.shape == mask.shape == upload.shape
    assert np.abs(blended.astype(int) - upload).mean() > 1, "the overlay shows the upload unchanged"
    expected_overlay, expected_mask, expected_table = app.segment(upload, 0.5)
    # The server runs on one thread, the test on several: rounding may flip a few boundary pixels' classes.
    assert (mask == expected_mask).all(axis=-1).mean() > 0.99
    assert (np.abs(blended.astype(int) - expected_overlay) <= 1).all(axis=-1).mean() > 0.99
    assert table and [row[0] for row in table] == [row[0] for row in expected_table]
    assert abs(sum(float(row[1]) for row in table) - 100) < 0.1
    np.testing.assert_array_equal(opaque, sample_mask)

    hosts = {url.split("/")[2] for url in requested if url.startswith("http")}
    assert hosts == {f"127.0.0.1:{server.port}"}, f"the page fetched from elsewhere: {sorted(hosts)}"
    assert recording_proxy.requests == [], f"the app tried to reach the network: {recording_proxy.requests}"
    if sys.platform.startswith("linux"):
        assert listening_addresses(server.port) == ["0100007F"], "the app must listen on 127.0.0.1 only"
    assert screenshot.stat().st_size > 0


def test_push_again_updates_in_place_and_reports_changes(tiny_model_dir, tmp_path):
    hub = tmp_path / "hub"
    repo, first = publish(tiny_model_dir, hub, "org/name")
    assert "model.safetensors" in first.added
    (repo / "stale.txt").write_text("the user's")
    (repo / "sample_prediction.png").write_bytes(b"from an earlier push with --sample_image")
    _, unchanged = publish(tiny_model_dir, hub, "org/name")
    assert unchanged.removed == ["sample_prediction.png"] and not unchanged.added and not unchanged.modified
    assert unchanged.kept == ["stale.txt"] and (repo / "stale.txt").read_text() == "the user's"
    retrained = DDRNetForSemanticSegmentation.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        retrained.decode_head.conv2.bias.add_(1.0)
    retrained.save_pretrained(tmp_path / "retrained")
    _, changed = publish(tmp_path / "retrained", hub, "org/name")
    assert changed.modified == ["model.safetensors"]
    assert sorted(p.name for p in (hub / "org").iterdir()) == ["name"]  # no staging folder left behind


def test_a_distilled_models_card_names_its_teacher(tiny_model):
    training = {"loss": "ohem", "teacher_model_name_or_path": "runs/teacher/best_model", "distillation": "channel"}
    training.update(distillation_weight=6.0, distillation_temperature=3.0)
    card = str(model_card("org/student", tiny_model, None, training, has_sample=False))
    assert (
        "Distilled from the teacher `runs/teacher/best_model` (channel-wise, weight 6.0, temperature 3.0) on top of "
        "its own loss." in card
    )
    assert "| teacher_model_name_or_path | runs/teacher/best_model |" in card
    assert "Distilled" not in str(model_card("org/plain", tiny_model, None, {"loss": "ohem"}, has_sample=False))
