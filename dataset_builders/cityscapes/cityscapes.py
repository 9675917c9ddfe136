"""Cityscapes (fine annotations) as a local `datasets` builder that reads the original project's split files.

Example:
    from dataset_builders.cityscapes import load_cityscapes
    splits = load_cityscapes("/data/cityscapes")      # reads /data/cityscapes/lists/{train,val,test,trainval}.lst
    splits["validation"][0]["label"]                   # PIL image of train ids 0..18, 255 = ignore
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import numpy as np

from ..image_files import encode_png, read_image, read_label
from ..split_lists import Sample, SplitListsBuilder, SplitListsConfig, find_split_files, fingerprint, read_samples
from .labels import CLASS_NAMES, IGNORE_INDEX, KNOWN_LABEL_IDS, LABEL_ID_TO_TRAIN_ID
from .split_lists import IMAGE_SUFFIX, CityscapesDataError

_DESCRIPTION = "Cityscapes fine annotations, 19 evaluation classes as train ids (255 = ignore)."
_CITATION = """@inproceedings{Cordts2016Cityscapes,
  title={The Cityscapes Dataset for Semantic Urban Scene Understanding},
  author={Cordts, Marius and Omran, Mohamed and Ramos, Sebastian and Rehfeld, Timo and Enzweiler, Markus and
          Benenson, Rodrigo and Franke, Uwe and Roth, Stefan and Schiele, Bernt},
  booktitle={CVPR},
  year={2016}
}"""
TRAIN_ID_SUFFIX = "_labelTrainIds.png"


CityscapesConfig = SplitListsConfig  # the public name of earlier versions


def sample_name(sample: Sample) -> str:
    """The file stem, e.g. `frankfurt_000000_000294`."""
    return Path(sample.image).name.removesuffix(IMAGE_SUFFIX).removesuffix(".png")


def sample_city(sample: Sample) -> str:
    return Path(sample.image).parent.name


def read_label_as_train_ids(path: Path, source: str) -> np.ndarray:
    """Decode a label PNG into train ids; `*_labelTrainIds.png` files are taken as they are."""
    label = read_label(path, source, CityscapesDataError)
    values = np.unique(label)
    if path.name.endswith(TRAIN_ID_SUFFIX):
        bad = [int(v) for v in values if v >= len(CLASS_NAMES) and v != IGNORE_INDEX]
        if bad:
            raise CityscapesDataError(f"{source}: train ids out of range in {path}: {bad[:10]} (valid: 0..18, 255)")
        return label.astype(np.uint8)
    bad = [int(v) for v in values if int(v) not in KNOWN_LABEL_IDS]
    if bad:
        raise CityscapesDataError(f"{source}: label ids out of range in {path}: {bad[:10]} (valid: 0..33)")
    return LABEL_ID_TO_TRAIN_ID[label]


class Cityscapes(SplitListsBuilder):
    """Cityscapes from a local download, split by the `.lst` files of the original DDRNet/HRNet code."""

    BUILDER_CONFIG_CLASS = CityscapesConfig
    VERSION = datasets.Version("1.1.0")  # 1.1: uncompressed training images

    def __init__(self, data_dir: str | os.PathLike, list_dir: str | os.PathLike | None = None, **kwargs):
        root = Path(data_dir)
        if not root.is_dir():
            raise CityscapesDataError(f"data_dir does not exist or is not a folder: {root}")
        lists = Path(list_dir) if list_dir is not None else root / "lists"
        self._split_files = find_split_files(
            lists, "write them with scripts/make_lists.py --data_dir <root>.", CityscapesDataError
        )
        self._samples = read_samples(root, self._split_files, CityscapesDataError)
        super().__init__(
            data_dir=str(root.resolve()),
            list_dir=str(lists.resolve()),
            fingerprint=fingerprint(root, self._split_files, self._samples),
            **kwargs,
        )

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            homepage="https://www.cityscapes-dataset.com",
            license="Cityscapes licence (non-commercial research and teaching); see the dataset card.",
            features=datasets.Features(
                {
                    "image": datasets.Image(),
                    "label": datasets.Image(),
                    "name": datasets.Value("string"),
                    "city": datasets.Value("string"),
                }
            ),
        )

    def _generate_examples(self, samples: list[Sample], uncompressed_images: bool):
        data_dir = Path(self.config.data_dir)
        for index, sample in enumerate(samples):
            image_bytes, image_size = read_image(
                data_dir / sample.image, sample.source, CityscapesDataError, uncompressed=uncompressed_images
            )
            label = None
            if sample.label is not None:
                train_ids = read_label_as_train_ids(data_dir / sample.label, sample.source)
                label_size = (train_ids.shape[1], train_ids.shape[0])
                if label_size != image_size:
                    raise CityscapesDataError(
                        f"{sample.source}: image {sample.image} is {image_size[0]}x{image_size[1]} but label "
                        f"{sample.label} is {label_size[0]}x{label_size[1]} (width x height)"
                    )
                label = {"bytes": encode_png(train_ids), "path": None}
            yield (
                index,
                {
                    "image": {"bytes": image_bytes, "path": None},
                    "label": label,
                    "name": sample_name(sample),
                    "city": sample_city(sample),
                },
            )


def load_cityscapes(
    data_dir: str | os.PathLike,
    list_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    num_proc: int | None = None,
) -> datasets.DatasetDict:
    """Prepare (once, then from the cache) and return the splits named by the split files.

    Splits: `train`, `validation`, `test`, `trainval`, those whose file exists. The test split has no `label`.
    Raises `CityscapesDataError` naming the file and line at fault; a failed preparation leaves no cache behind.
    """
    builder = Cityscapes(data_dir=data_dir, list_dir=list_dir, cache_dir=None if cache_dir is None else str(cache_dir))
    try:
        builder.download_and_prepare(num_proc=num_proc)
    except datasets.exceptions.DatasetGenerationError as error:
        cause = error.__cause__
        if isinstance(cause, CityscapesDataError):
            raise cause from None
        raise
    splits = builder.as_dataset()
    if "test" in splits:
        splits["test"] = splits["test"].remove_columns("label")
    return splits
