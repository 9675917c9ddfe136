"""The one error type of the dataset builders, so that callers catch every bad-input case at once."""

from __future__ import annotations


class DatasetError(ValueError):
    """Bad dataset input; the message names the file, line, split or column at fault."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type when it has none): the gist of a library's long report."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
