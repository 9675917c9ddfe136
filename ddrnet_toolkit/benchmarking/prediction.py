"""`predict.py`'s path end to end on each engine: decoding the images, the model, post-processing at full
resolution and writing every output format, on noise-textured synthetic images of the inference size."""

from __future__ import annotations

import shutil
import tempfile
import time
from functools import partial
from pathlib import Path

from dataset_builders.cityscapes.synthetic import make_synthetic_cityscapes

from ..inference.engines import Engine
from ..inference.inputs import PredictionInputs
from ..inference.prediction import OutputWriter, predict_inputs
from ..inference.segmentation import predict_classes
from ..inference.visualization import model_palette
from .timing import Measurement

PREDICTION_TASK = "predict.py end to end"


def measure_prediction(
    engines: dict[str, Engine],
    model_dir: str | Path,
    num_images: int,
    height: int,
    width: int,
    formats: tuple[str, ...] = ("color", "overlay"),
    batch_size: int = 4,
    rounds: int = 2,
    variant: str = "custom",
) -> list[Measurement]:
    """Images per second of `predict_inputs` (what predict.py runs once the engine is loaded) over `num_images`
    PNGs of `height`x`width` writing `formats`, per engine, timed `rounds` times interleaved, keeping the best."""
    best = dict.fromkeys(engines, float("inf"))
    with tempfile.TemporaryDirectory() as tmp:
        make_synthetic_cityscapes(tmp, num_train=0, num_val=0, num_test=num_images, height=height, width=width)
        images = sorted(Path(tmp).glob("leftImg8bit/test/*/*.png"))
        inputs = PredictionInputs.plan(images)
        for _ in range(rounds):
            for name, engine in engines.items():
                output_dir = Path(tmp) / "predictions"
                palette = model_palette(model_dir, engine.config.id2label)
                writer = OutputWriter(output_dir, list(formats), [], palette)
                predict = partial(predict_classes, engine, device=engine.device)
                start = time.perf_counter()
                summary = predict_inputs(
                    inputs, predict, writer, batch_size, settings={"engine": name}, before_writing=output_dir.mkdir
                )
                best[name] = min(best[name], time.perf_counter() - start)
                assert summary.images == num_images
                shutil.rmtree(output_dir)
    shape = f"{num_images}x3x{height}x{width} PNG -> {'+'.join(formats)}"
    return [
        Measurement(PREDICTION_TASK, variant, name, "cpu", shape, seconds / num_images, num_images / seconds)
        for name, seconds in best.items()
    ]
