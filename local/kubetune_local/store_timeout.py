"""How long `kubetune run` and `kubetune serve` wait for an object store that does not answer.

The store's own retry settings (`kubetune_jobs.storage`) decide, as for the jobs: `--store-timeout SECONDS`
sets KUBETUNE_S3_RETRY_BUDGET for the command and the jobs it starts. Unset (flag and variable), the
jobs' defaults hold: the first contact gives up after 30 s (a store that cannot be reached before any work
is more often misconfigured than restarting), a later operation after 300 s (a store restarting mid-run
must not fail it). Each wait says what it waits for and for how long as it begins.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from kubetune_jobs import storage
from kubetune_jobs.contract import env as names

from .lifecycle import Failure, say

FLAG = "--store-timeout"
HELP = (f"seconds to keep retrying an object store that does not answer before giving up (sets "
        f"{names.S3_RETRY_BUDGET}; default: that variable, else {storage.CHECK_RETRY_BUDGET_S:.0f} s for the "
        f"first contact and {storage.DEFAULT_RETRY_BUDGET_S:.0f} s for each later operation)")
# The store's retry settings and what each must parse as: an unparsable one fails the first store operation
# with a traceback (here or in a job), a NaN or infinite budget retries for ever.
SECONDS_SETTINGS = (names.S3_RETRY_BUDGET, names.S3_RETRY_DELAY)
COUNT_SETTINGS = (names.S3_RETRIES,)


def seconds(text: str) -> float:
    """argparse type of FLAG."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number of seconds, 0 or more")
    return value


def configure(timeout: float | None) -> None:
    """Apply FLAG to this process and its jobs, after checking the retry settings the environment holds
    (a malformed one would fail the first store operation with a traceback, in a job or here)."""
    if timeout is not None:
        os.environ[names.S3_RETRY_BUDGET] = f"{timeout:g}"
    for name in (*SECONDS_SETTINGS, *COUNT_SETTINGS):
        raw = os.environ.get(name)
        if not raw:
            continue
        if name in COUNT_SETTINGS:
            try:
                int(raw)
            except ValueError:
                raise Failure(f"{name}={raw!r} is not a whole number of attempts") from None
        else:
            try:
                seconds(raw)
            except argparse.ArgumentTypeError as exc:
                raise Failure(f"{name}={exc}") from None
    jobs = logging.getLogger("kubetune_jobs")
    if not any(isinstance(h, _Said) for h in jobs.handlers):
        jobs.addHandler(_Said())


def first_contact_s() -> float:
    """How long the first contact waits: the user's bound where one is set, else the jobs' first check's."""
    explicit = os.environ.get(names.S3_RETRY_BUDGET)
    return float(explicit) if explicit else storage.CHECK_RETRY_BUDGET_S


@contextmanager
def first_contact() -> Iterator[None]:
    """Store operations in this block give up after `first_contact_s()`."""
    with storage.retry_budget(first_contact_s()):
        yield


class _Said(logging.Handler):
    """The jobs' warnings in this process, one line each on stderr; the store's 'retrying for up to N s'
    (what it waits for, and how long) as a wait, the first time with how to change it."""

    RETRYING = "; retrying for up to"

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.hinted = False

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if self.RETRYING in line:
            line = f"waiting: {line}"
            if not self.hinted:
                line += f" ({FLAG} SECONDS sets how long)"
                self.hinted = True
        say(line)
