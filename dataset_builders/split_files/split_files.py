"""Any semantic-segmentation dataset listed in DDRNet.pytorch's `.lst` split files, as a local `datasets` builder.

Example:
    from dataset_builders.label_space import LabelSpace
    from dataset_builders.split_files import load_split_files
    labels = LabelSpace.from_labels_file("/data/mine/labels.json")
    splits = load_split_files("/data/mine", labels)   # reads /data/mine/lists/{train,val,test,trainval}.lst
    splits["validation"][0]["label"]                  # PIL image of class ids 0..N-1, ignore_index = ignore

A dataset with conventions of its own (Cityscapes: label-id files, a `city` column) is a subclass that changes how
a label file becomes class ids, and the columns that describe a sample.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import datasets
import numpy as np

from ..disk_space import check_free_space
from ..errors import DatasetError
from ..image_files import TRAINING_SPLITS, encode_png, read_image, read_label, stored_image_bytes
from ..label_space import LabelSpace
from ..split_lists import Sample, find_split_files, fingerprint, read_samples

_DESCRIPTION = "A local semantic-segmentation dataset read from split files; labels hold class ids."
# How the images of the training splits are stored: as PNGs without compression, which decode about 10x faster (the
# training pipeline's speed) for about 3x a photo's PNG on disk, or as the original files' bytes.
IMAGE_STORAGES = ("uncompressed", "original")
# A label is stored as a PNG of class ids compressed faster than the original's: allow for it being larger.
LABEL_SIZE_FACTOR = 2


@dataclass
class SplitFilesConfig(datasets.BuilderConfig):
    """`list_dir`: the folder of the split files; `fingerprint`: a digest of the lists, of every file they name and
    of the label space; `image_storage`: one of `IMAGE_STORAGES`, for the training splits. All three key the
    builder's cache; the number of processes that prepares it does not."""

    list_dir: str | None = None
    fingerprint: str | None = None
    image_storage: str = "uncompressed"


class SplitFiles(datasets.GeneratorBasedBuilder):
    """Images and labels named by `.lst` split files, one split per file found; labels are checked and encoded to
    class ids once, here, and the images of the training splits are stored uncompressed (see `read_image`)."""

    BUILDER_CONFIG_CLASS = SplitFilesConfig
    VERSION = datasets.Version("1.1.0")
    ERROR: type[DatasetError] = DatasetError
    MISSING_LISTS_HINT = "write one '<image> <label>' line per sample, paths relative to the data folder."
    # A test list that names labels makes a labelled test split (CamVid's, say).
    LABELLED_TEST = True

    def __init__(
        self,
        data_dir: str | os.PathLike,
        label_space: LabelSpace,
        list_dir: str | os.PathLike | None = None,
        image_storage: str = "uncompressed",
        **kwargs,
    ):
        root = Path(data_dir)
        if not root.is_dir():
            raise self.ERROR(f"data_dir does not exist or is not a folder: {root}")
        if image_storage not in IMAGE_STORAGES:
            raise self.ERROR(f"image_storage must be one of {', '.join(IMAGE_STORAGES)}, got {image_storage!r}")
        lists = Path(list_dir) if list_dir is not None else root / "lists"
        self._label_space = label_space
        self._split_files = find_split_files(lists, self.MISSING_LISTS_HINT, self.ERROR)
        self._samples = read_samples(root, self._split_files, self.ERROR, labelled_test=self.LABELLED_TEST)
        super().__init__(
            data_dir=str(root.resolve()),
            list_dir=str(lists.resolve()),
            fingerprint=fingerprint(root, self._split_files, self._samples, label_space.fingerprint.encode()),
            image_storage=image_storage,
            **kwargs,
        )

    @property
    def unlabelled_splits(self) -> list[str]:
        return [split for split, samples in self._samples.items() if samples[0].label is None]

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(description=_DESCRIPTION, features=datasets.Features(self.columns()))

    def columns(self) -> dict[str, datasets.features.FeatureType]:
        return {"image": datasets.Image(), "label": datasets.Image(), "name": datasets.Value("string")}

    def describe(self, sample: Sample) -> dict[str, str]:
        """The columns besides `image` and `label`: `name` is the image path without its extension (e.g.
        `images/val/0001`), unique where file stems may repeat."""
        return {"name": PurePosixPath(sample.image).with_suffix("").as_posix()}

    def class_ids(self, path: Path, source: str) -> np.ndarray:
        """The label file at `path` as `(H, W)` uint8 class ids (and the ignore value)."""
        stored = read_label(path, source, self.ERROR)
        return self._label_space.encode(stored, what=f"{source}: label {path}")

    def uncompressed_images(self, split: str) -> bool:
        return split in TRAINING_SPLITS and self.config.image_storage == "uncompressed"

    def estimated_size(self) -> int:
        """About the bytes a preparation writes: every split's stored images and labels."""
        data_dir = Path(self.config.data_dir)
        size = 0
        for split, samples in self._samples.items():
            for sample in samples:
                size += stored_image_bytes(data_dir / sample.image, self.uncompressed_images(split))
                if sample.label is not None:
                    size += LABEL_SIZE_FACTOR * (data_dir / sample.label).stat().st_size
        return size

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        # `samples` is a list: with `num_proc`, datasets gives each process a contiguous part of it, so the rows keep
        # their order.
        return [
            datasets.SplitGenerator(
                name=split, gen_kwargs={"samples": samples, "uncompressed_images": self.uncompressed_images(split)}
            )
            for split, samples in self._samples.items()
        ]

    def _generate_examples(self, samples: list[Sample], uncompressed_images: bool):
        data_dir = Path(self.config.data_dir)
        for sample in samples:
            image_bytes, image_size = read_image(
                data_dir / sample.image, sample.source, self.ERROR, uncompressed=uncompressed_images
            )
            label = None
            if sample.label is not None:
                class_ids = self.class_ids(data_dir / sample.label, sample.source)
                label_size = (class_ids.shape[1], class_ids.shape[0])
                if label_size != image_size:
                    raise self.ERROR(
                        f"{sample.source}: image {sample.image} is {image_size[0]}x{image_size[1]} but label "
                        f"{sample.label} is {label_size[0]}x{label_size[1]} (width x height)"
                    )
                label = {"bytes": encode_png(class_ids), "path": None}
            # The key names the sample's line: unique over the processes that share a split's preparation.
            row = {"image": {"bytes": image_bytes, "path": None}, "label": label, **self.describe(sample)}
            yield sample.source, row


def prepare_splits(builder: SplitFiles, num_proc: int | None = None) -> datasets.DatasetDict:
    """Prepare (once, then from the cache) and return the builder's splits; an unlabelled split has no `label`.

    `num_proc` processes share the preparation of each split (the same rows in the same order as one process, in
    the same cache). A preparation whose estimated size exceeds the free space of the cache's disk raises
    `InsufficientDiskSpace` before anything is written. A bad input raises the builder's `ERROR` naming the file and
    line at fault, and leaves no cache behind.
    """
    cache = Path(builder.cache_dir)
    if not (cache / datasets.config.DATASET_INFO_FILENAME).is_file():
        check_free_space(builder.estimated_size(), cache, f"the {builder.name} dataset")
    try:
        builder.download_and_prepare(num_proc=num_proc)
    except datasets.exceptions.DatasetGenerationError as error:
        if isinstance(error.__cause__, DatasetError):
            raise error.__cause__ from None
        raise
    splits = builder.as_dataset()
    for split in builder.unlabelled_splits:
        splits[split] = splits[split].remove_columns("label")
    return splits


def load_split_files(
    data_dir: str | os.PathLike,
    label_space: LabelSpace,
    list_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    num_proc: int | None = None,
    image_storage: str = "uncompressed",
) -> datasets.DatasetDict:
    """The splits named by the split files in `list_dir` (`lists/` under `data_dir` by default): `train`,
    `validation`, `test`, `trainval`, those whose file exists, with `label` holding class ids (a test split whose list
    names no labels has no `label`); prepared by `num_proc` processes, the training images stored as `image_storage`
    (see `IMAGE_STORAGES`)."""
    cache = None if cache_dir is None else str(cache_dir)
    builder = SplitFiles(
        data_dir=data_dir, label_space=label_space, list_dir=list_dir, image_storage=image_storage, cache_dir=cache
    )
    return prepare_splits(builder, num_proc)
