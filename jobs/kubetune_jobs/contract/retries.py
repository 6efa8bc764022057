"""Retrying object-store operations: one policy for the jobs and the operator.

A store that is away for a minute (a MinIO restart, a network blip) must not fail a training run, so
transient failures (connection errors, 5xx, throttling) are retried on a time budget; refusals that a
retry cannot fix (missing key or bucket, bad credentials) fail at once. Tuned by the environment:

    KUBETUNE_S3_RETRY_BUDGET  seconds one operation keeps retrying transient failures (default 300;
                              the first reachability check of a job at most 30)
    KUBETUNE_S3_RETRIES       optional cap on attempts per operation (the operator sets a small one:
                              a controller must not block on a store for minutes)
    KUBETUNE_S3_RETRY_DELAY   first backoff in seconds (default 0.5), doubled per attempt up to 30 s,
                              with jitter so restarted pods do not retry in step
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from . import env as names

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_RETRY_BUDGET_S = 300.0
MAX_BACKOFF_S = 30.0


class StorageError(RuntimeError):
    """The store could not be reached or refused an operation; the message names which and why."""


_budget_override: contextvars.ContextVar[float | None] = contextvars.ContextVar("retry_budget", default=None)
# Refusals that the same request will meet again: retrying them only delays the error.
_FINAL_CODES = {"NoSuchKey", "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                "InvalidBucketName", "NoSuchUpload", "MethodNotAllowed", "InvalidArgument", "EntityTooLarge",
                "InvalidObjectName", "KeyTooLongError", "AccountProblem", "AllAccessDisabled"}
_TRANSIENT_STATUS = {408, 429}


@contextlib.contextmanager
def retry_budget(seconds: float) -> Iterator[None]:
    """Within this block (this thread), store operations retry for at most `seconds` (0: one attempt).

    For writes a later one replaces (a progress record), where waiting out an outage would stall the caller."""
    token = _budget_override.set(max(0.0, seconds))
    try:
        yield
    finally:
        _budget_override.reset(token)


def transient(exc: BaseException) -> str | None:
    """A one-line description of `exc` when retrying may help, else None."""
    from http.client import HTTPException

    from minio.error import InvalidResponseError, S3Error, ServerError
    from urllib3.exceptions import HTTPError

    if isinstance(exc, S3Error):
        status = getattr(exc.response, "status", 0) or 0
        if exc.code in _FINAL_CODES or (status < 500 and status not in _TRANSIENT_STATUS and exc.code not in (
                "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "OperationAborted",
                "Throttling", "RequestTimeTooSkewed", "XMinioServerNotInitialized")):
            return None
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, ServerError):
        status = exc.status_code
    elif isinstance(exc, InvalidResponseError):  # a proxy's HTML error page, for instance
        status = getattr(exc, "_code", 0) or 0
    elif isinstance(exc, HTTPError | HTTPException | ConnectionError | TimeoutError):
        # The network, not the local disk: a missing local file or a full disk is not retried.
        return f"{type(exc).__name__}: {exc}"
    else:
        return None
    return f"HTTP {status}" if status >= 500 or status in _TRANSIENT_STATUS else None


def backoff(attempt: int, base: float, cap: float = MAX_BACKOFF_S) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): exponential, capped, half of it random."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def budget() -> float:
    """Seconds the current operation may keep retrying (`retry_budget`, else the environment's)."""
    override = _budget_override.get()
    return override if override is not None else float(
        os.environ.get(names.S3_RETRY_BUDGET) or DEFAULT_RETRY_BUDGET_S)


def retrying(what: str, endpoint: str, fn: Callable[[], T]) -> T:
    """`fn()`, retried while it fails transiently and the budget lasts; StorageError names the last failure."""
    limit = budget()
    cap = os.environ.get(names.S3_RETRIES)
    max_attempts = max(1, int(cap)) if cap else None
    base = float(os.environ.get(names.S3_RETRY_DELAY) or 0.5)
    started = time.monotonic()
    deadline = started + limit
    attempt = 0
    while True:
        attempt += 1
        try:
            result = fn()
        except Exception as exc:
            last = transient(exc)
            if last is None:
                raise
        else:
            if attempt > 1:
                log.info("object store %s: %s succeeded at attempt %d, after %.0f s", endpoint, what, attempt,
                         time.monotonic() - started)
            return result
        left = deadline - time.monotonic()
        if left <= 0 or (max_attempts is not None and attempt >= max_attempts):
            break
        if attempt == 1:
            log.warning("object store %s: %s failed (%s); retrying for up to %.0f s", endpoint, what, last, left)
        time.sleep(min(left, backoff(attempt, base)))
    raise StorageError(f"object store {endpoint} failed to {what} after {attempt} attempts in "
                       f"{time.monotonic() - started:.0f} s ({last})")
