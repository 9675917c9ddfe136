"""Cityscapes (fine annotations) as a local `datasets` builder that reads the original project's split files: the
split-file builder with the Cityscapes label space and a `city` column.

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

from ..image_files import read_label
from ..label_space import INVALID, LabelSpace
from ..split_files.split_files import SplitFiles, prepare_splits
from ..split_lists import Sample
from .labels import CLASS_NAMES, IGNORE_INDEX, KNOWN_LABEL_IDS, LABEL_ID_TO_TRAIN_ID, PALETTE
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

# `*_gtFine_labelIds.png` values: the official label ids 0..33, each to its train id (or ignored); nothing else.
_KNOWN = np.isin(np.arange(256), sorted(KNOWN_LABEL_IDS))
LABEL_IDS = LabelSpace(
    CLASS_NAMES,
    PALETTE,
    IGNORE_INDEX,
    lookup=np.where(_KNOWN, LABEL_ID_TO_TRAIN_ID.astype(np.int16), INVALID),
    source="the Cityscapes label ids",
)
# `*_labelTrainIds.png` values are taken as they are: train ids 0..18 and 255.
TRAIN_IDS = LabelSpace.cityscapes()


def read_label_as_train_ids(path: Path, source: str) -> np.ndarray:
    """Decode a label PNG into train ids; `*_labelTrainIds.png` files are taken as they are."""
    label = read_label(path, source, CityscapesDataError)
    if path.name.endswith(TRAIN_ID_SUFFIX):
        space, kind, valid = TRAIN_IDS, "train ids", "0..18, 255"
    else:
        space, kind, valid = LABEL_IDS, "label ids", "0..33"
    bad = space.invalid_values(label)
    if bad:
        raise CityscapesDataError(f"{source}: {kind} out of range in {path}: {bad[:10]} (valid: {valid})")
    return space.lookup[label].astype(np.uint8)


class Cityscapes(SplitFiles):
    """Cityscapes from a local download, split by the `.lst` files of the original DDRNet/HRNet code."""

    VERSION = datasets.Version("1.2.0")
    ERROR = CityscapesDataError
    MISSING_LISTS_HINT = "write them with scripts/make_lists.py --data_dir <root>."
    # Cityscapes' test labels are placeholders: the test split is scored by the benchmark server only.
    LABELLED_TEST = False

    def __init__(
        self,
        data_dir: str | os.PathLike,
        list_dir: str | os.PathLike | None = None,
        image_storage: str = "uncompressed",
        **kwargs,
    ):
        super().__init__(data_dir, TRAIN_IDS, list_dir, image_storage, **kwargs)

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            homepage="https://www.cityscapes-dataset.com",
            license="Cityscapes licence (non-commercial research and teaching); see the dataset card.",
            features=datasets.Features({**self.columns(), "city": datasets.Value("string")}),
        )

    def describe(self, sample: Sample) -> dict[str, str]:
        """`name`, the file stem (`frankfurt_000000_000294`), and `city`."""
        image = Path(sample.image)
        return {"name": image.name.removesuffix(IMAGE_SUFFIX).removesuffix(".png"), "city": image.parent.name}

    def class_ids(self, path: Path, source: str) -> np.ndarray:
        return read_label_as_train_ids(path, source)


def load_cityscapes(
    data_dir: str | os.PathLike,
    list_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    num_proc: int | None = None,
    image_storage: str = "uncompressed",
) -> datasets.DatasetDict:
    """Prepare (once, then from the cache, by `num_proc` processes) and return the splits named by the split files,
    the training images stored as `image_storage` (see `split_files.IMAGE_STORAGES`).

    Splits: `train`, `validation`, `test`, `trainval`, those whose file exists. The test split has no `label`.
    Raises `CityscapesDataError` naming the file and line at fault; a failed preparation leaves no cache behind.
    """
    cache = None if cache_dir is None else str(cache_dir)
    builder = Cityscapes(data_dir=data_dir, list_dir=list_dir, image_storage=image_storage, cache_dir=cache)
    return prepare_splits(builder, num_proc)
