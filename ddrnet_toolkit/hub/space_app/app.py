#!/usr/bin/env python
# Written by ddrnet-hf push_to_hub.py; a later push replaces this file. Delete this line to keep your own version.
"""Semantic segmentation demo of the DDRNet model in this folder: upload an image (or pick an example) to see the
overlay, the colour mask and the share of the image each class covers.

    pip install -r requirements.txt
    python app.py [--port 7860]

serves the page on http://127.0.0.1:7860 (the port also comes from GRADIO_SERVER_PORT). It listens on the loopback
interface only, unless GRADIO_SERVER_NAME names another address (Hugging Face Spaces set it to 0.0.0.0). No share
link, no analytics. The folder is also a Gradio Space: the card's front matter names this file.

It needs only gradio, torch, transformers, numpy and pillow: the model's code lies in this folder and is loaded
with `trust_remote_code=True`. Class names come from config.json, colours from labels.json when the folder has one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Gradio reads this when it is imported and when it launches; a demo of a local model sends nothing anywhere.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation  # noqa: E402

HERE = Path(__file__).resolve().parent
LABELS_FILE = "labels.json"
EXAMPLE_FILE = re.compile(r"ddrnet_example_(\d+)\.jpg")
DEFAULT_OPACITY = 0.5
# Larger images are segmented at this size (longest side) and the result is scaled back: a phone photo at full
# size would take a CPU many seconds and gigabytes; road scenes at 2048x1024 (Cityscapes) run as they are.
MAX_INFERENCE_SIDE = 2048
# Uploads above this many pixels are refused: their masks and blends alone would take gigabytes.
MAX_UPLOAD_PIXELS = 40_000_000
# PIL modes of 16-bit (and 32-bit integer) grayscale images, which `convert("RGB")` would clip.
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
TABLE_HEADERS = ["class", "pixel share (%)"]
IMAGE_HEIGHT = 320  # pixels on the page; pictures are scaled to fit, the files keep their size

# The colours of the Cityscapes benchmark, for a model trained on its 19 classes without a labels.json.
CITYSCAPES_COLORS = {
    "road": (128, 64, 128),
    "sidewalk": (244, 35, 232),
    "building": (70, 70, 70),
    "wall": (102, 102, 156),
    "fence": (190, 153, 153),
    "pole": (153, 153, 153),
    "traffic light": (250, 170, 30),
    "traffic sign": (220, 220, 0),
    "vegetation": (107, 142, 35),
    "terrain": (152, 251, 152),
    "sky": (70, 130, 180),
    "person": (220, 20, 60),
    "rider": (255, 0, 0),
    "car": (0, 0, 142),
    "truck": (0, 0, 70),
    "bus": (0, 60, 100),
    "train": (0, 80, 100),
    "motorcycle": (0, 0, 230),
    "bicycle": (119, 11, 32),
}


def bit_spread_colors(count: int) -> np.ndarray:
    """`(count, 3)` uint8 distinct colours: class i gets the colour of index i + 1 in the PASCAL VOC scheme, which
    deals the index's bits out to the high bits of red, green and blue in turn (index 0 would be black)."""
    colors = np.zeros((count, 3), dtype=np.uint8)
    for class_id in range(count):
        index = class_id + 1
        for bit in range(7, -1, -1):
            for channel in range(3):
                colors[class_id, channel] |= ((index >> channel) & 1) << bit
            index >>= 3
    return colors


def class_colors(names: list[str], folder: Path = HERE) -> np.ndarray:
    """`(len(names), 3)` uint8 colours: those of the folder's labels.json when it lists one per class, else the
    Cityscapes colours for the Cityscapes classes, else `bit_spread_colors` (the same choice the training
    project's predictions and model card make, so the demo shows the card's colours)."""
    labels_path = folder / LABELS_FILE
    if labels_path.is_file():
        try:
            colors = np.array(json.loads(labels_path.read_text(encoding="utf-8")).get("colors"), dtype=np.int64)
        except (ValueError, TypeError, AttributeError) as error:
            print(f"{labels_path}: colours unreadable ({error}); using the default colours")
        else:
            if colors.shape == (len(names), 3) and colors.min() >= 0 and colors.max() <= 255:
                return colors.astype(np.uint8)
            print(f"{labels_path}: colours are not one [r, g, b] per class; using the default colours")
    if list(names) == list(CITYSCAPES_COLORS):
        return np.array(list(CITYSCAPES_COLORS.values()), dtype=np.uint8)
    return bit_spread_colors(len(names))


@dataclass
class Segmenter:
    """The model of the folder, its image processor, and the names and colours of its classes."""

    model: torch.nn.Module
    processor: object
    device: torch.device
    names: list[str]
    colors: np.ndarray


@lru_cache(maxsize=1)
def segmenter() -> Segmenter:
    """Load the model of this file's folder once (on the GPU when there is one) and keep it for every request."""
    folder = HERE
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForSemanticSegmentation.from_pretrained(folder, trust_remote_code=True).to(device).eval()
    processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
    id2label = model.config.id2label
    names = [str(id2label.get(i, id2label.get(str(i), f"class {i}"))) for i in range(model.config.num_labels)]
    return Segmenter(model, processor, device, names, class_colors(names, folder))


def as_rgb(image: np.ndarray | Image.Image) -> np.ndarray:
    """`(H, W, 3)` uint8 from what Gradio or a caller passes: an RGB, RGBA or grayscale array or PIL image. 16-bit
    grayscale (PNG mode I;16, or integer values above 255) is scaled by 255/65535, not clipped to white."""
    array = np.asarray(
        image.convert("RGB") if isinstance(image, Image.Image) and image.mode not in WIDE_MODES else image
    )
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise gr.Error(f"Expected an image, got an array of shape {array.shape}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if array.dtype != np.uint8:
        values = array.astype(np.float64)
        sixteen_bit = array.dtype == np.uint16 or (np.issubdtype(array.dtype, np.integer) and values.max() > 255)
        if sixteen_bit:
            values = values * (255.0 / 65535.0)
        array = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array[..., :3])


# The last image's class ids, so that moving the opacity slider blends again without running the model again.
_last_prediction: tuple[bytes, np.ndarray] | None = None
_prediction_lock = threading.Lock()


def predict_class_ids(rgb: np.ndarray) -> np.ndarray:
    """`(H, W)` class ids of an `(H, W, 3)` uint8 image, at its own size."""
    global _last_prediction
    digest = hashlib.blake2b(repr(rgb.shape).encode(), digest_size=16)
    digest.update(rgb.tobytes())
    key = digest.digest()
    with _prediction_lock:
        if _last_prediction is not None and _last_prediction[0] == key:
            return _last_prediction[1]
    loaded = segmenter()
    height, width = rgb.shape[:2]
    picture = Image.fromarray(rgb)
    scale = MAX_INFERENCE_SIDE / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        picture = picture.resize(size, Image.Resampling.BILINEAR)
    inputs = loaded.processor(images=picture, return_tensors="pt")
    with torch.inference_mode():
        outputs = loaded.model(pixel_values=inputs["pixel_values"].to(loaded.device))
    # Logits come out at 1/8 of the input; the processor scales them to the input's size before the argmax. An image
    # segmented smaller gets its class ids scaled up (nearest), never its scores.
    size = (picture.height, picture.width)
    segmentation = loaded.processor.post_process_semantic_segmentation(outputs, target_sizes=[size])[0]
    class_ids = segmentation.cpu().numpy().astype(np.uint8 if len(loaded.names) <= 256 else np.int32)
    if size != (height, width):
        class_ids = np.asarray(Image.fromarray(class_ids).resize((width, height), Image.Resampling.NEAREST))
    with _prediction_lock:
        _last_prediction = (key, class_ids)
    return class_ids


def class_shares(class_ids: np.ndarray, names: list[str]) -> list[list]:
    """Rows `[class name, share of the pixels in %]` of the classes present, largest first (2 decimals)."""
    counts = np.bincount(class_ids.ravel(), minlength=len(names))
    total = int(counts.sum())
    order = sorted(range(len(names)), key=lambda i: (-counts[i], i))
    return [[names[i], round(100.0 * int(counts[i]) / total, 2)] for i in order if counts[i] > 0]


def segment(
    image: np.ndarray | Image.Image | None, opacity: float = DEFAULT_OPACITY
) -> tuple[np.ndarray | None, np.ndarray | None, list[list]]:
    """The overlay (the image blended with the mask at `opacity`), the colour mask and the per-class table of an
    image, both pictures at the image's size; nothing for no image (the input was cleared)."""
    if image is None:
        return None, None, []
    height, width = (image.height, image.width) if isinstance(image, Image.Image) else np.shape(image)[:2]
    if height * width > MAX_UPLOAD_PIXELS:
        raise gr.Error(
            f"The image has {height * width / 1e6:.0f} megapixels; this demo segments images of at most "
            f"{MAX_UPLOAD_PIXELS / 1e6:.0f} (scale it down first)"
        )
    rgb = as_rgb(image)
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise gr.Error("The image is empty")
    loaded = segmenter()
    class_ids = predict_class_ids(rgb)
    mask = loaded.colors[class_ids]
    alpha = min(max(float(opacity), 0.0), 1.0)
    overlay = (rgb * np.float32(1 - alpha) + mask * np.float32(alpha)).round().astype(np.uint8)
    return overlay, mask, class_shares(class_ids, loaded.names)


def example_images(folder: Path = HERE) -> list[str]:
    """The example images bundled in the folder, in their number's order."""
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := EXAMPLE_FILE.fullmatch(p.name)) and p.is_file()]
    return [str(path) for _, path in sorted(found)]


def card_title(folder: Path = HERE) -> str:
    """The model card's first heading (the repo id), or the folder's name."""
    card = folder / "README.md"
    if card.is_file():
        for line in card.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return folder.name


def build_demo() -> gr.Blocks:
    """The page: image and opacity in, overlay, mask and per-class table out; each change runs `segment`."""
    loaded = segmenter()
    title = card_title()
    with gr.Blocks(title=f"{title}: semantic segmentation", analytics_enabled=False) as demo:
        gr.Markdown(
            f"# {title}\n"
            f"DDRNet semantic segmentation into {len(loaded.names)} classes, running on the {loaded.device.type}. "
            "Upload an image or pick an example; the overlay, the colour mask and the share of each class appear "
            "on the right."
        )
        with gr.Row():
            with gr.Column():
                image = gr.Image(
                    label="image",
                    type="numpy",
                    image_mode="RGB",
                    sources=["upload", "clipboard"],
                    height=IMAGE_HEIGHT,
                    elem_id="image",
                )
                opacity = gr.Slider(0.0, 1.0, value=DEFAULT_OPACITY, step=0.05, label="mask opacity", elem_id="opacity")
                examples = example_images()
                if examples:
                    gr.Examples(
                        examples=examples, inputs=image, cache_examples=False, label="examples", elem_id="examples"
                    )
            with gr.Column():
                # PNG, not Gradio's default WebP, so that the pictures keep the exact class colours; no "share"
                # button, which would post the picture to the Hugging Face community.
                picture = {"format": "png", "interactive": False, "height": IMAGE_HEIGHT, "buttons": ["download"]}
                overlay = gr.Image(label="overlay", elem_id="overlay", **picture)
                mask = gr.Image(label="colour mask", elem_id="mask", **picture)
        table = gr.Dataframe(
            headers=TABLE_HEADERS,
            datatype=["str", "number"],
            label="pixel share per class",
            interactive=False,
            elem_id="class-table",
        )
        outputs = [overlay, mask, table]
        image.change(segment, inputs=[image, opacity], outputs=outputs)
        # The class ids of the last image are kept, so moving the slider only blends again.
        opacity.change(segment, inputs=[image, opacity], outputs=outputs)
    return demo


def main(argv: list[str] | None = None) -> None:
    """Load the model and serve the page until interrupted; no share link (it would open a public tunnel)."""
    parser = argparse.ArgumentParser(description="Serve the segmentation demo of the model in this folder.")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        help="the port on 127.0.0.1 (default: GRADIO_SERVER_PORT, else 7860)",
    )
    args = parser.parse_args(argv)
    # Loopback unless the environment says otherwise: a Space sets GRADIO_SERVER_NAME=0.0.0.0 for its proxy.
    host = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    demo = build_demo()  # loads the model first, so that a broken folder fails here rather than on the first image
    demo.queue().launch(server_name=host, server_port=args.port, share=False, show_error=True)


if __name__ == "__main__":
    main()
