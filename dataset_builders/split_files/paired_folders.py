"""Split files for datasets shipped as an image folder and an annotation folder per split.

CamVid's SegNet copy (`train/` + `trainannot/`), ADE20K (`images/training/` + `annotations/training/`) and many
Kaggle sets come this way. The folders of each split are found by their usual names (`FOLDER_PAIRS`) or given,
and an image is paired with the annotation of the same stem (or the stem plus a usual suffix: `_label`, `_mask`,
`_L`, ...). A split without an annotation folder (a test split) is listed without labels.

Example:
    from dataset_builders.split_files.paired_folders import write_paired_lists
    write_paired_lists("/data/CamVid")   # lists/train.lst, val.lst, test.lst, trainval.lst
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from ..split_lists import list_line, write_split_files

# The split names of the split files, and the folder names that datasets give them.
SPLIT_FOLDER_NAMES = {
    "train": ("train", "training"),
    "validation": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}
# (image folder, annotation folder) patterns, `{}` standing for the split's folder name, most specific first.
FOLDER_PAIRS = (
    ("images/{}", "annotations/{}"),
    ("images/{}", "labels/{}"),
    ("images/{}", "masks/{}"),
    ("img/{}", "ann/{}"),
    ("{}/images", "{}/labels"),
    ("{}/images", "{}/masks"),
    ("{}", "{}annot"),
    ("{}", "{}_annot"),
    ("{}", "{}_labels"),
    ("{}", "{}labels"),
    ("{}", "{}_masks"),
    ("{}", "{}_gt"),
)
# What an annotation's stem may add to its image's.
LABEL_STEM_SUFFIXES = ("", "_label", "_labels", "_mask", "_annot", "_L", "_gt")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def find_split_folders(data_dir: Path) -> dict[str, tuple[Path, Path | None]]:
    """Each split's image folder and annotation folder (None when the split has images only), found by name."""
    found: dict[str, tuple[Path, Path | None]] = {}
    for split, names in SPLIT_FOLDER_NAMES.items():
        for name in names:
            for image_pattern, label_pattern in FOLDER_PAIRS:
                images, labels = data_dir / image_pattern.format(name), data_dir / label_pattern.format(name)
                if images.is_dir() and labels.is_dir() and images != labels:
                    found[split] = (images, labels)
                    break
            if split in found:
                break
        if split not in found:  # images without annotations: a test split
            for name in names:
                for image_pattern, _ in FOLDER_PAIRS:
                    images = data_dir / image_pattern.format(name)
                    if split == "test" and images.is_dir() and image_files(images):
                        found[split] = (images, None)
                        break
                if split in found:
                    break
    return found


def pair_files(images_dir: Path, labels_dir: Path) -> list[tuple[Path, Path]]:
    """Every image of `images_dir` with its annotation in `labels_dir`; an image without one is refused."""
    labels = {path.stem: path for path in image_files(labels_dir)}
    pairs = []
    for image in image_files(images_dir):
        label = next((labels[image.stem + s] for s in LABEL_STEM_SUFFIXES if image.stem + s in labels), None)
        if label is None:
            suffixes = ", ".join(repr(s) for s in LABEL_STEM_SUFFIXES[1:])
            raise DatasetError(
                f"{image}: no annotation of the same stem in {labels_dir} (nor the stem plus {suffixes})"
            )
        pairs.append((image, label))
    return pairs


def write_paired_lists(
    data_dir: str | Path,
    list_dir: str | Path | None = None,
    folders: dict[str, tuple[Path, Path | None]] | None = None,
    overwrite: bool = False,
) -> dict[str, int]:
    """Write the split files of a dataset of paired folders (`folders`: split -> (images, annotations or None),
    found by `find_split_folders` when not given) into `list_dir` (`<data_dir>/lists` by default); returns the
    number of samples per split file."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"data_dir does not exist or is not a folder: {data_dir}")
    folders = folders if folders is not None else find_split_folders(data_dir)
    if "train" not in folders:
        patterns = ", ".join(f"{images.format('train')} + {labels.format('train')}" for images, labels in FOLDER_PAIRS)
        raise DatasetError(
            f"{data_dir}: no training images with annotations in folders of the usual names ({patterns}); name the "
            "folders of each split with --split"
        )
    lines = {}
    for split, (images, labels) in folders.items():
        for folder in (images, labels):
            if folder is not None and not folder.is_dir():
                raise DatasetError(f"{folder}: no such folder")
            if folder is not None and not folder.resolve().is_relative_to(data_dir.resolve()):
                raise DatasetError(f"{folder}: not inside {data_dir}, which the split files' paths are relative to")
        samples = pair_files(images, labels) if labels is not None else [(image, None) for image in image_files(images)]
        if not samples:
            raise DatasetError(f"{images}: holds no image ({', '.join(IMAGE_SUFFIXES)})")
        lines[split] = [list_line(data_dir, image, label) for image, label in samples]
    list_dir = Path(list_dir) if list_dir is not None else data_dir / "lists"
    return write_split_files(list_dir, lines, overwrite)
