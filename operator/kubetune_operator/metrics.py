"""The operator's Prometheus metrics (served on /metrics), named in `kubetune_jobs.contract.metrics`; the
handlers record through the functions here. The jobs' own kubetune_train_*/_eval_*/_bench_* series go
through the Pushgateway, and `forget_pushed` deletes a deleted resource's groups there.

Counters and histograms are created at 0 for every label set they will use as soon as a namespace or a
ModelServe is first seen: Prometheus sees no increase in a series whose first sample is already 1, so a
first rejection or a first finished step would otherwise never show in `rate()`, `increase()` or an alert.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import start_http_server

from kubetune_jobs.contract import metrics as m
from kubetune_jobs.contract.pushgateway import Gateway

log = logging.getLogger(__name__)

RUN_PHASE = m.RUN_PHASE.create()
RUN_FAILURES = m.RUN_FAILURES.create()
RUN_PROGRESS = m.RUN_PROGRESS.create()
RUN_EVAL_ACCURACY = m.RUN_EVAL_ACCURACY.create()
STEP_SECONDS = m.STEP_DURATION.create()
STEP_QUEUE_WAIT = m.STEP_QUEUE_WAIT.create()
JOBS_CREATED = m.JOBS_CREATED.create()
RECONCILE_ERRORS = m.RECONCILE_ERRORS.create()
SERVE_READY = m.SERVE_READY.create()
SERVE_READY_REPLICAS = m.SERVE_READY_REPLICAS.create()
SERVE_DECISIONS = m.SERVE_DECISIONS.create()
SERVE_ADAPTER_READY = m.SERVE_ADAPTER_READY.create()
SERVE_ADAPTER_REPLICAS = m.SERVE_ADAPTER_REPLICAS.create()

FINETUNERUN, MODELSERVE = "FineTuneRun", "ModelServe"
# The Succeeded condition's reasons of a failed run (finetunerun.reconcile and .results).
RUN_FAILURE_REASONS = (*(f"{kind.capitalize()}Failed" for kind in m.STEP_KINDS), "GateNotMet", "InvalidSpec",
                       "SecretNotFound")

_lock = threading.Lock()
_namespaces: set[str] = set()
_progress: dict[tuple[str, str], Any] = {}  # (namespace, run) -> what progress looked like
_eval_suites: dict[tuple[str, str], set[str]] = {}
_serves: dict[tuple[str, str], str] = {}  # (namespace, serve) -> model_name its series carry
_decisions: dict[tuple[str, str], set[tuple[str, str]]] = {}  # (namespace, serve) -> (decision, reason)s
_adapters: dict[tuple[str, str], set[str]] = {}  # (namespace, serve) -> adapters with series


def serve(port: int) -> None:
    start_http_server(port)


def _namespace(namespace: str) -> None:
    with _lock:
        if namespace in _namespaces:
            return
        _namespaces.add(namespace)
    for kind in m.STEP_KINDS:
        STEP_SECONDS.labels(namespace, kind)
        STEP_QUEUE_WAIT.labels(namespace, kind)
        JOBS_CREATED.labels(namespace, kind)
    for reason in RUN_FAILURE_REASONS:
        RUN_FAILURES.labels(namespace, reason)


# ---------------------------------------------------------------- FineTuneRun

def run_seen(namespace: str, name: str, phase: str | None, old_phase: str | None, reason: str | None,
             progress: Any) -> None:
    """A reconcile's outcome: the run's phase (and the reason when it just failed) and what its progress
    looks like now (any value; a change is progress)."""
    _namespace(namespace)
    if phase is None:
        return
    for p in m.RUN_PHASES:
        RUN_PHASE.labels(namespace, name, p).set(1 if p == phase else 0)
    if phase == "Failed" and old_phase != "Failed":
        RUN_FAILURES.labels(namespace, reason or "Unknown").inc()
    key = (namespace, name)
    with _lock:
        moved = key not in _progress or _progress[key] != progress
        _progress[key] = progress
    if moved:
        RUN_PROGRESS.labels(namespace, name).set(time.time())


def job_created(namespace: str, kind: str) -> None:
    _namespace(namespace)
    JOBS_CREATED.labels(namespace, kind).inc()


def step_finished(namespace: str, kind: str, seconds: float | None, wait_seconds: float | None) -> None:
    _namespace(namespace)
    if seconds is not None:
        STEP_SECONDS.labels(namespace, kind).observe(seconds)
    if wait_seconds is not None:
        STEP_QUEUE_WAIT.labels(namespace, kind).observe(max(wait_seconds, 0.0))


def eval_accuracy(namespace: str, name: str, accuracy: dict[str, float]) -> None:
    """The latest evaluation's accuracy per suite (suites no longer reported are dropped)."""
    key = (namespace, name)
    with _lock:
        gone = _eval_suites.get(key, set()) - set(accuracy)
        _eval_suites[key] = set(accuracy)
    for suite in gone:
        _remove(RUN_EVAL_ACCURACY, namespace, name, suite)
    for suite, value in accuracy.items():
        RUN_EVAL_ACCURACY.labels(namespace, name, suite).set(value)


def forget_run(namespace: str, name: str) -> None:
    for p in m.RUN_PHASES:
        _remove(RUN_PHASE, namespace, name, p)
    _remove(RUN_PROGRESS, namespace, name)
    with _lock:
        _progress.pop((namespace, name), None)
        suites = _eval_suites.pop((namespace, name), set())
    for suite in suites:
        _remove(RUN_EVAL_ACCURACY, namespace, name, suite)


def reconcile_error(namespace: str, resource: str, reason: str) -> None:
    RECONCILE_ERRORS.labels(namespace, resource, reason).inc()


# ---------------------------------------------------------------- ModelServe

def _serve_labels(namespace: str, name: str, model_name: str) -> None:
    """Point the serve's series at `model_name` (a renamed model drops the old name's series)."""
    key = (namespace, name)
    with _lock:
        old = _serves.get(key)
        _serves[key] = model_name
    if old == model_name:
        return
    if old is not None:
        _drop_serve_series(namespace, name, old)
    with _lock:
        _decisions[key] = set(m.SERVE_OUTCOMES)
    for decision, reason in m.SERVE_OUTCOMES:
        SERVE_DECISIONS.labels(namespace, name, model_name, decision, reason)


def serve_seen(namespace: str, name: str, model_name: str, ready: bool, ready_replicas: int,
               decisions: list[tuple[str, str]]) -> None:
    """A reconcile's outcome: Ready or not, the serving revision's ready replicas, the new decisions."""
    _serve_labels(namespace, name, model_name)
    SERVE_READY.labels(namespace, name, model_name).set(1 if ready else 0)
    SERVE_READY_REPLICAS.labels(namespace, name, model_name).set(ready_replicas)
    for decision, reason in decisions:
        with _lock:
            _decisions.setdefault((namespace, name), set()).add((decision, reason))
        SERVE_DECISIONS.labels(namespace, name, model_name, decision, reason).inc()


def adapters_seen(namespace: str, name: str, ready: dict[str, tuple[bool, int]]) -> None:
    """Each adapter's readiness and the replicas serving it (adapter -> (ready, replicas)); adapters no longer
    named lose their series."""
    key = (namespace, name)
    with _lock:
        gone = _adapters.get(key, set()) - set(ready)
        _adapters[key] = set(ready)
    for adapter in gone:
        _remove(SERVE_ADAPTER_READY, namespace, name, adapter)
        _remove(SERVE_ADAPTER_REPLICAS, namespace, name, adapter)
    for adapter, (is_ready, replicas) in ready.items():
        SERVE_ADAPTER_READY.labels(namespace, name, adapter).set(1 if is_ready else 0)
        SERVE_ADAPTER_REPLICAS.labels(namespace, name, adapter).set(replicas)


def _drop_serve_series(namespace: str, name: str, model_name: str) -> None:
    _remove(SERVE_READY, namespace, name, model_name)
    _remove(SERVE_READY_REPLICAS, namespace, name, model_name)
    with _lock:
        decisions = _decisions.pop((namespace, name), set())
    for decision, reason in decisions:
        _remove(SERVE_DECISIONS, namespace, name, model_name, decision, reason)


def forget_serve(namespace: str, name: str) -> None:
    adapters_seen(namespace, name, {})
    with _lock:
        model_name = _serves.pop((namespace, name), None)
    if model_name is not None:
        _drop_serve_series(namespace, name, model_name)


def _remove(metric: Any, *labels: str) -> None:
    try:
        metric.remove(*labels)
    except KeyError:
        pass


# ---------------------------------------------------------------- pushed groups

async def forget_pushed(url: str | None, owns: Callable[[Mapping[str, str]], bool], what: str,
                        timeout: float = 5.0) -> list[dict[str, str]]:
    """Delete the Pushgateway groups `owns` accepts (`contract.metrics.run_owns`/`serve_owns`); a gateway
    that cannot be reached costs a warning and never holds up the deletion."""
    if not url:
        return []
    deleted = await asyncio.to_thread(functools.partial(Gateway(url).forget, owns, timeout=timeout))
    if deleted:
        log.info("%s: deleted %d pushed metric group(s)", what, len(deleted))
    return deleted
