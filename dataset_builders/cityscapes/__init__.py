"""Cityscapes as a local `datasets` builder, and a synthetic Cityscapes with the same layout."""

from ..split_lists import SPLIT_FILES
from .cityscapes import Cityscapes, load_cityscapes
from .split_lists import CityscapesDataError, read_split_file, write_split_lists

__all__ = [
    "SPLIT_FILES",
    "Cityscapes",
    "CityscapesDataError",
    "load_cityscapes",
    "read_split_file",
    "write_split_lists",
]
