"""Any semantic-segmentation dataset listed in `.lst` split files, as a local `datasets` builder."""

from .split_files import SplitFiles, load_split_files

__all__ = ["SplitFiles", "load_split_files"]
