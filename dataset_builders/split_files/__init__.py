"""Any semantic-segmentation dataset listed in `.lst` split files, as a local `datasets` builder."""

from .split_files import SplitFiles, SplitFilesConfig, load_split_files, prepare_splits

__all__ = ["SplitFiles", "SplitFilesConfig", "load_split_files", "prepare_splits"]
