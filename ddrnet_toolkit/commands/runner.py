"""The one entry point of every command: a user's mistake becomes one `error: ...` line and exit status 1.

Argument errors are the parsers' (`parser.error`, exit status 2). What reaches `run_script` as one of
`USER_ERRORS` is bad input the user can fix (data, a model folder, a checkpoint, an output location); anything
else is a bug in this project and keeps its traceback.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable

import torch

from dataset_builders.errors import DatasetError
from modeling_ddrnet.configuration_ddrnet import DDRNetConfigError
from modeling_ddrnet.convert_original import CheckpointConversionError

from ..errors import RunWideError, UserInputError, one_line

# How torch re-raises an exception of a DataLoader worker: "Caught <type> in DataLoader worker process <n>."
WORKER_TRACEBACK = re.compile(r"Caught \w+ in DataLoader worker process \d+\.")
USER_ERRORS: tuple[type[BaseException], ...] = (
    UserInputError,
    DatasetError,
    CheckpointConversionError,
    DDRNetConfigError,
    json.JSONDecodeError,
    OSError,
)


def describe(error: BaseException) -> str:
    """One line for the user: an OS error names its path, a full disk says so, and an error raised in a DataLoader
    worker (which torch re-raises with the worker's traceback as its message) is the worker's own message."""
    if isinstance(error, OSError) and not isinstance(error, UserInputError):
        path = error.filename
        if error.errno == errno.ENOSPC:
            return f"no space left on the device holding {path or 'the output'}"
        if path is not None and error.strerror:
            return f"{path}: {error.strerror}"
    message = str(error)
    if WORKER_TRACEBACK.match(message):
        last = message.strip().splitlines()[-1]
        return one_line(last.split(": ", 1)[1] if ": " in last else last)
    return one_line(error)


def is_distributed_process() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def process_rank() -> str:
    return os.environ.get("RANK", "?")


class LauncherTerminated(BaseException):
    """SIGTERM reached a distributed process before a command handled it itself (training checkpoints on SIGTERM
    once it has started): torchrun ends the other processes of a machine this way when one of them fails, and a
    scheduler when it cancels the job. A BaseException, so that no `except Exception` holds it up."""


def raise_launcher_terminated(signum: int, frame) -> None:
    raise LauncherTerminated


def peer_failure_line(error: RuntimeError) -> str | None:
    """The line of a collective that broke because another process of a distributed run exited or stopped
    answering; None for any other error."""
    if not is_distributed_process():
        return None
    message = str(error)
    rank = process_rank()
    # gloo's words when a peer did not answer within the process group's timeout (a hung or unreachable machine).
    timed_out = "Timed out waiting" in message
    if timed_out or (isinstance(error, torch.distributed.DistError) and "timed out" in message.lower()):
        return (
            f"error: process {rank} stopped: another process of the run did not answer within the distributed "
            "timeout (--ddp_timeout); it hangs or its machine is unreachable"
        )
    # gloo's words when the peer closed its sockets (interpreter teardown) or dropped them (`os._exit`).
    peer_gone = "Connection closed by peer" in message or "Connection reset by peer" in message
    if isinstance(error, torch.distributed.DistError) or peer_gone:
        return f"error: process {rank} stopped because another process of the run failed"
    return None


def run_main(main: Callable[[], int | None]) -> tuple[int, str | None]:
    """`main`'s exit status, and the line to print on stderr, with `USER_ERRORS` turned into one line."""
    try:
        return main() or 0, None
    except USER_ERRORS as error:
        if isinstance(error, RunWideError) and is_distributed_process() and process_rank() != "0":
            return 1, None  # the main process says it
        return 1, f"error: {describe(error)}"
    except RuntimeError as error:
        line = peer_failure_line(error)
        if line is None:
            exit_after_bug()
        # A peer stopped with its own message: this process's broken collective adds nothing.
        return 1, line
    except KeyboardInterrupt:
        return 130, "interrupted"
    except Exception:
        exit_after_bug()


def run_script(main: Callable[[], int | None]) -> None:
    """Run a command's `main` and exit with its status, turning `USER_ERRORS` into one line on stderr.

    A distributed process always ends with a line of its own: a SIGTERM from its launcher, which may come before
    the process has seen a peer's failure, becomes one too (see `LauncherTerminated`).
    """
    distributed = is_distributed_process()
    if distributed:
        signal.signal(signal.SIGTERM, raise_launcher_terminated)
    try:
        status, line = run_main(main)
    except LauncherTerminated:
        status = 1
        line = (
            f"error: process {process_rank()} was ended by its launcher (SIGTERM): another process of the run "
            "failed, or the job was cancelled"
        )
    if distributed:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the line below is the last word
    if line is not None:
        print(line, file=sys.stderr)
    exit_process(status)


def entry_point(main: Callable[[], int | None]) -> Callable[[], None]:
    """The console entry point of a command: `run_script(main)`."""
    return lambda: run_script(main)


def exit_after_bug() -> None:
    """Re-raise the exception being handled (a bug: it keeps its traceback), or print it and exit in a
    distributed process, whose teardown must be skipped (see `exit_process`)."""
    if not is_distributed_process():
        raise  # the exception `run_script` is handling
    traceback.print_exc()
    exit_process(1)


def exit_process(status: int) -> None:
    """Exit with `status`. A distributed process skips the interpreter's teardown: destroying a gloo process group
    can deadlock, its destructor joining a worker thread that waits for the GIL to free a finished collective's
    tensors (seen about one two-process CPU run in seven). Logs and streams are flushed first."""
    if not is_distributed_process():
        sys.exit(status)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
