"""`kubetune-job probe`: every `--interval-seconds`, the probe set to the endpoint, read as a client reads it.

Each round prints its health line, pushes the `kubetune_probe_*` gauges (best effort, `contract.metrics`)
and rewrites `probe.json` under `--output` (what the operator and `kubetune serve` read). An endpoint that
does not answer is a round with every request unanswered (accuracy 0), never a crash: the probe is how an
outage shows. SIGTERM ends it after the round in flight and deletes its pushed group: a Deployment rolled to
another revision leaves no stale figures behind it (the alerts also require a recent round).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from .. import storage
from ..contract import metrics as m
from ..contract.layout import PROBE_FILE
from ..contract.options import ProbeOptions
from ..contract.pushgateway import Gateway
from ..contract.records import ProbeHealth, ProbeReport
from ..evaluate import suites
from ..evaluate.suites import Item
from ..evaluate.targets import EndpointTarget
from .health import as_client_reads, line, score, summarize

log = logging.getLogger(__name__)
SUITE = "probe"  # the suite name of a user's own probe set (--data)
ITEM_FIELDS = ("id", "suite", "category", "passed", "reason", "unparseable", "called", "schema_violations", "latency_s")


def items_of(options: ProbeOptions) -> list[Item]:
    """The probe set: the named suites' first items, then the user's file; an unreadable set is an error."""
    items: list[Item] = []
    for name, limit in suites.validate(options.suite).items() if options.suite else ():
        if name in (suites.HELDOUT_SUITE, suites.CHAT_SUITE):
            raise suites.SuiteError(f"--suite {name}: the probe sends tool-calling requests; give a file with --data")
        items += suites.load(name, limit=limit)
    if options.data:
        items += suites.file_items(options.data, SUITE)
    if not items:
        raise suites.SuiteError("the probe set is empty")
    return items


class Exporter:
    """The gauges of the last round, pushed under the probe's group; the round counter lives as long as the prober."""

    def __init__(self, options: ProbeOptions) -> None:
        self.gateway = Gateway(options.pushgateway) if options.pushgateway else None
        self.key = m.PROBE_GROUP.key(namespace=options.namespace, serve=options.serve_name,
                                     revision=options.revision, model_name=options.model)
        self.registry = CollectorRegistry()
        self.gauges = {metric.name: metric.create(self.registry) for metric in m.PROBE}

    def export(self, health: ProbeHealth) -> bool:
        g = self.gauges
        for metric, value in ((m.PROBE_ACCURACY, health.accuracy), (m.PROBE_UNPARSEABLE, health.unparseable),
                              (m.PROBE_SCHEMA_VIOLATION, health.schema_violation), (m.PROBE_CALL, health.call),
                              (m.PROBE_NO_CALL, health.no_call), (m.PROBE_FAILED, health.failed)):
            # A share with nothing to measure is NaN (absent from any comparison), not a reassuring 0.
            g[metric.name].set(float("nan") if value is None else value)
        for statistic, value in (("p50", health.latency_p50_s), ("p95", health.latency_p95_s)):
            g[m.PROBE_LATENCY.name].labels(statistic=statistic).set(float("nan") if value is None else value)
        g[m.PROBE_LAST_RUN.name].set(time.time())
        g[m.PROBE_ROUNDS.name].inc()
        return self.gateway.push(m.PROBE_GROUP.job, self.registry, self.key, timeout=10.0) if self.gateway else False

    def forget(self) -> None:
        """Delete this prober's group: a revision no longer probed must not keep its last figures (and its alerts)."""
        if self.gateway is not None:
            self.gateway.forget(lambda g: g.get("job") == m.PROBE_GROUP.job
                                and all(g.get(k) == v for k, v in self.key.items()))


def probe_round(target: EndpointTarget, items: list[Item]) -> tuple[ProbeHealth, list[dict[str, Any]]]:
    records = score(items, target.predict(items, desc="probe", progress=False))
    return summarize(records), records


def write(output: str, options: ProbeOptions, health: ProbeHealth, records: list[dict[str, Any]], rounds: int) -> None:
    report = ProbeReport(created=datetime.now(UTC).isoformat(timespec="seconds"), model=options.model,
                         revision=options.revision, rounds=rounds, health=health,
                         items=[{k: r.get(k) for k in ITEM_FIELDS} for r in records])
    storage.location(output).child(PROBE_FILE).write_text(json.dumps(report.dump(), indent=1))


def loop(options: ProbeOptions, stop: threading.Event, on_round: Callable[[ProbeHealth], None] = lambda h: None,
         target: EndpointTarget | None = None) -> ProbeHealth | None:
    """Rounds until `options.rounds` are done or `stop` is set; the last round's health. Stopped, it deletes its
    pushed figures (the revision is no longer probed); after its rounds it leaves them."""
    items = items_of(options)
    target = target or EndpointTarget(options.endpoint, options.model, concurrency=options.concurrency,
                                      timeout=options.timeout, retries=1, max_new_tokens=options.max_new_tokens,
                                      reader=as_client_reads)
    exporter = Exporter(options)
    health = None
    done = 0
    while not stop.is_set():
        started = time.monotonic()
        health, records = probe_round(target, items)
        exporter.export(health)
        if options.output:
            try:
                write(options.output, options, health, records, done + 1)
            except (storage.StorageError, OSError) as exc:  # the figures are on the line and in the metrics; the
                # next round writes again
                log.warning("probe.json not written: %s", exc)
        done += 1
        on_round(health)
        if options.rounds and done >= options.rounds:
            break
        stop.wait(max(0.0, options.interval_seconds - (time.monotonic() - started)))
    if stop.is_set():
        exporter.forget()
    return health


def run(options: ProbeOptions) -> int:
    options.validate()
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        loop(options, stop, on_round=lambda h: print(f"probe {options.model}: {line(h)}", flush=True))
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
