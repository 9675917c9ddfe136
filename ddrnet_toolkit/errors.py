"""The error a user can fix, and the one-line forms of exception messages that the toolkit reports."""

from __future__ import annotations

from dataset_builders.errors import first_line

__all__ = ["UserInputError", "first_line", "one_line"]


class UserInputError(ValueError):
    """Input the user can fix; the message names the file, folder or value at fault."""


class RunWideError(UserInputError):
    """A `UserInputError` that every process of a distributed run raises at once, having agreed on it: the main
    process reports it, the others stop without repeating it."""


def one_line(error: BaseException) -> str:
    """An exception's message with its line breaks and runs of spaces collapsed (its type when it has none)."""
    return " ".join(str(error).split()) or type(error).__name__
