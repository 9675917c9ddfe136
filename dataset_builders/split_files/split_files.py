"""Any semantic-segmentation dataset listed in DDRNet.pytorch's `.lst` split files, as a local `datasets` builder.

Example:
    from dataset_builders.label_space import LabelSpace
    from dataset_builders.split_files import load_split_files
    labels = LabelSpace.from_labels_file("/data/mine/labels.json")
    splits = load_split_files("/data/mine", labels)   # reads /data/mine/lists/{train,val,test,trainval}.lst
    splits["validation"][0]["label"]                  # PIL image of class ids 0..N-1, ignore_index = ignore
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import datasets

from ..errors import DatasetError
from ..image_files import encode_png, read_image, read_label
from ..label_space import LabelSpace
from ..split_lists import Sample, SplitListsBuilder, find_split_files, fingerprint, read_samples

_DESCRIPTION = "A local semantic-segmentation dataset read from split files; labels hold class ids."


def sample_name(sample: Sample) -> str:
    """The image path without its extension, e.g. `images/val/0001`: unique where file stems may repeat."""
    return PurePosixPath(sample.image).with_suffix("").as_posix()


class SplitFiles(SplitListsBuilder):
    """Images and labels named by `.lst` split files; labels are checked and encoded to class ids once, here."""

    VERSION = datasets.Version("1.0.0")

    def __init__(
        self,
        data_dir: str | os.PathLike,
        label_space: LabelSpace,
        list_dir: str | os.PathLike | None = None,
        **kwargs,
    ):
        root = Path(data_dir)
        if not root.is_dir():
            raise DatasetError(f"data_dir does not exist or is not a folder: {root}")
        lists = Path(list_dir) if list_dir is not None else root / "lists"
        self._label_space = label_space
        self._split_files = find_split_files(
            lists, "write one '<image> <label>' line per sample, paths relative to the data folder."
        )
        self._samples = read_samples(root, self._split_files)
        super().__init__(
            data_dir=str(root.resolve()),
            list_dir=str(lists.resolve()),
            fingerprint=fingerprint(root, self._split_files, self._samples, label_space.fingerprint.encode()),
            **kwargs,
        )

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            features=datasets.Features(
                {"image": datasets.Image(), "label": datasets.Image(), "name": datasets.Value("string")}
            ),
        )

    def _generate_examples(self, samples: list[Sample], uncompressed_images: bool):
        data_dir = Path(self.config.data_dir)
        for index, sample in enumerate(samples):
            image_bytes, image_size = read_image(
                data_dir / sample.image, sample.source, uncompressed=uncompressed_images
            )
            label = None
            if sample.label is not None:
                stored = read_label(data_dir / sample.label, sample.source)
                label_size = (stored.shape[1], stored.shape[0])
                if label_size != image_size:
                    raise DatasetError(
                        f"{sample.source}: image {sample.image} is {image_size[0]}x{image_size[1]} but label "
                        f"{sample.label} is {label_size[0]}x{label_size[1]} (width x height)"
                    )
                class_ids = self._label_space.encode(stored, what=f"{sample.source}: label {data_dir / sample.label}")
                label = {"bytes": encode_png(class_ids), "path": None}
            yield index, {"image": {"bytes": image_bytes, "path": None}, "label": label, "name": sample_name(sample)}


def load_split_files(
    data_dir: str | os.PathLike,
    label_space: LabelSpace,
    list_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> datasets.DatasetDict:
    """Prepare (once, then from the cache) and return the splits named by the split files in `list_dir`.

    Splits: `train`, `validation`, `test`, `trainval`, those whose file exists (`lists/` under `data_dir` by
    default). `label` holds class ids; the test split has no `label`. Raises `DatasetError` naming the file and
    line at fault; a failed preparation leaves no cache behind.
    """
    builder = SplitFiles(
        data_dir=data_dir,
        label_space=label_space,
        list_dir=list_dir,
        cache_dir=None if cache_dir is None else str(cache_dir),
    )
    try:
        builder.download_and_prepare()
    except datasets.exceptions.DatasetGenerationError as error:
        if isinstance(error.__cause__, DatasetError):
            raise error.__cause__ from None
        raise
    splits = builder.as_dataset()
    if "test" in splits:
        splits["test"] = splits["test"].remove_columns("label")
    return splits
