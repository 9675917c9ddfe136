"""The one error type of the dataset builders, so that callers catch every bad-input case at once."""

from __future__ import annotations


class DatasetError(ValueError):
    """Bad dataset input; the message names the file, line, split or column at fault."""
