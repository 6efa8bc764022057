"""How `kubetune run` and `kubetune serve` end: one line naming the cause, and no process left behind.

Both start processes a careless exit would leave running: vLLM in a session of its own (a terminal's
Ctrl-C does not reach it), the jobs in ours. SIGTERM unwinds the command as Ctrl-C does (`Terminated` is
a KeyboardInterrupt), so every `with` block and `finally` that stops a server, or asks a job to checkpoint
and waits for it, runs for both signals. Whatever path the command leaves by, the servers it started are
stopped before its last line is printed.

The last line: a known failure (a manifest, a store, a server, a model, a file) names its cause; anything
else is one line pointing to a log that holds the traceback. Exit codes: 1 failed, 130 Ctrl-C, 143 SIGTERM.
"""

from __future__ import annotations

import datetime
import errno
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread wherever it is, so that the command unwinds as for Ctrl-C."""


class Failure(RuntimeError):
    """A failure the command explains itself: the message is the one line the user reads."""


class OutputClosed(Exception):
    """Standard output was closed under the command (`kubetune run ... | head`)."""


class _Console(Console):
    """rich's Console, but a closed output is an exception the guard explains, not rich's silent exit(1)
    (a SystemExit would pass by every handler that stops what the command started)."""

    def on_broken_pipe(self) -> None:
        _quiet_stdout()
        raise OutputClosed


def console() -> Console:
    """The console a command prints to."""
    return _Console()


def say(line: str) -> None:
    """`line` on stderr as it is (no markup, no folding); nothing if stderr is closed too."""
    try:
        Console(stderr=True).print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
    except (OSError, SystemExit):
        pass


def _terminated(signum: int, frame: Any) -> None:
    raise Terminated


@contextmanager
def signals_handled() -> Iterator[None]:
    """SIGTERM raises `Terminated` within the block; both signals' handlers are as before after it (a
    caller in the same process, a test, keeps its own)."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    return EXIT_TERMINATED if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED


def signal_name(interrupt: KeyboardInterrupt) -> str:
    return "SIGTERM" if isinstance(interrupt, Terminated) else "Ctrl-C"


def known(exc: BaseException) -> str | None:
    """The one line for a failure whose cause the exception names, else None."""
    from minio.error import S3Error

    from kubetune_jobs import models, storage
    from kubetune_jobs.contract.store import StoreConfigError
    from kubetune_jobs.serving.process import ServerError
    from kubetune_operator.apitypes import SpecError

    if isinstance(exc, Failure | ServerError | storage.StorageError | models.ModelError | StoreConfigError |
                  SpecError):
        return str(exc)
    if isinstance(exc, S3Error):  # a refusal no retry can fix (a missing bucket, bad keys)
        where = "/".join(n for n in (exc.bucket_name, exc.object_name) if n)
        return f"the object store refused{' s3://' + where if where else ''}: {exc.code}: {exc.message}"
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        return f"{where}: {exc.strerror}" if where else exc.strerror
    return None


def _log_unexpected(command: str, exc: BaseException) -> Path | None:
    """The traceback of `exc` written to a log of its own; None if no directory takes it."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = "".join(traceback.format_exception(exc))
    from kubetune_jobs.models import cache_dir

    for root in (cache_dir() / "logs", Path(tempfile.gettempdir())):
        path = root / f"kubetune-{command}-{stamp}-{os.getpid()}.log"
        try:
            root.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        except OSError:
            continue
        return path
    return None


def _stdout_closed() -> bool:
    try:
        sys.stdout.flush()
    except OSError as exc:
        return exc.errno in (errno.EPIPE, errno.EINVAL)
    return False


def _quiet_stdout() -> None:
    """Whatever is still buffered for a closed stdout goes nowhere, so the exit writes no error of its own."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _ending(command: str, exc: BaseException) -> tuple[int, str]:
    """The exit code and last line for what ended the command."""
    if isinstance(exc, KeyboardInterrupt):
        return exit_code(exc), f"kubetune {command}: stopped ({signal_name(exc)})"
    if isinstance(exc, OutputClosed) or (isinstance(exc, OSError) and exc.errno == errno.EPIPE and _stdout_closed()):
        _quiet_stdout()
        return EXIT_FAILED, f"kubetune {command}: stopped: its output was closed (broken pipe)"
    line = known(exc)
    if line is None:
        log = _log_unexpected(command, exc)
        line = f"unexpected error: {type(exc).__name__}: {exc}" + (f"; the traceback is in {log}" if log else "")
    return EXIT_FAILED, "✗ " + " ".join(line.split())  # one line, whatever the message holds


def guarded(command: str, body: Callable[[], int]) -> int:
    """`body()`'s exit code; any failure or interrupt ends in one line on stderr, after every server
    the command started has been stopped."""
    from kubetune_jobs.serving import process

    code, line = EXIT_FAILED, None
    try:
        try:
            code = body()
        except Exception as exc:  # noqa: BLE001 - the command's contract: one line, never a traceback
            code, line = _ending(command, exc)
    except KeyboardInterrupt as exc:  # also one arriving while a failure is being explained
        code, line = _ending(command, exc)
    finally:
        process.stop_all()  # a SystemExit from a library passes, but not before this
    if line is not None:
        # The last line is printed whatever arrives now: a signal here would end the command in a traceback.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        say(line)
    return code
