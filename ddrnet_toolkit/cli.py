"""The one entry point of every script: a user's mistake becomes one `error: ...` line and exit status 1.

Argument errors are the parsers' (`parser.error`, exit status 2). What reaches `run_script` as one of
`USER_ERRORS` is bad input the user can fix (data, a model folder, a checkpoint, an output location); anything
else is a bug in this project and keeps its traceback.
"""

from __future__ import annotations

import errno
import json
import sys
from collections.abc import Callable

from dataset_builders.cityscapes import CityscapesDataError
from modeling_ddrnet.configuration_ddrnet import DDRNetConfigError
from modeling_ddrnet.convert_original import CheckpointConversionError


class UserInputError(ValueError):
    """Input the user can fix; the message names the file, folder or argument at fault."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    UserInputError,
    CityscapesDataError,
    CheckpointConversionError,
    DDRNetConfigError,
    json.JSONDecodeError,
    OSError,
)


def describe(error: BaseException) -> str:
    """One line for the user: an OS error names its path, a full disk says so."""
    if isinstance(error, OSError) and not isinstance(error, UserInputError):
        path = error.filename
        if error.errno == errno.ENOSPC:
            return f"no space left on the device holding {path or 'the output'}"
        if path is not None and error.strerror:
            return f"{path}: {error.strerror}"
    return " ".join(str(error).split()) or type(error).__name__


def run_script(main: Callable[[], int | None]) -> None:
    """Run a script's `main` and exit with its status, turning `USER_ERRORS` into one line on stderr."""
    try:
        status = main()
    except USER_ERRORS as error:
        print(f"error: {describe(error)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)
