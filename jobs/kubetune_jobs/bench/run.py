"""`kubetune-job bench`: warm up, run each concurrency level, check the counts against the server's,
write bench.json, print the table, push the metrics.

bench.json is rewritten after every level, so a sweep that stops (the server went away, the job was
stopped) leaves what it measured, marked `complete: false`. A level's failed requests are figures;
the sweep stops early only when the endpoint no longer answers at all. Anything else that stops it
(SIGTERM, an error of ours) is written into bench.json as its `error` before the job exits. The job
fails (exit 1) when the sweep is incomplete or a level completed no request; an endpoint that cannot
be reached or does not serve the model is one error before anything is sent. The server's counters
are the server's: when they cannot be used, the levels have no server counts and `notes` says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from .. import storage
from ..contract import env
from ..contract.layout import BENCH_FILE, BENCH_MARKDOWN
from ..contract.options import BenchOptions
from ..contract.records import BenchReport
from . import report as reports
from . import server_counts, stats
from .client import VLLM, Client, EndpointError, Sample
from .workload import Workload

log = logging.getLogger(__name__)


class BenchError(ValueError):
    """Bad options; the message names the flag."""


def validate(options: BenchOptions) -> None:
    if not options.concurrency:
        raise BenchError("--concurrency names no level")
    for c in options.concurrency:
        if c < 1:
            raise BenchError(f"--concurrency {c}: a level needs at least one request in flight")
    for flag, value, least in (("--requests", options.requests, 1), ("--max-tokens", options.max_tokens, 1),
                               ("--warmup", options.warmup, 0)):
        if value < least:
            raise BenchError(f"{flag} {value}: must be at least {least}")
    if options.timeout <= 0:
        raise BenchError(f"--timeout {options.timeout:g}: must be positive")


def _warmup_record(samples: list[Sample]) -> dict[str, Any]:
    done = [s for s in samples if s.ok]
    return {"requests": len(samples), "completed": len(done), "failed": len(samples) - len(done),
            "ttft_mean_s": stats.summary([s.ttft for s in done if s.ttft is not None])["mean"],
            "e2e_mean_s": stats.summary([s.e2e for s in done])["mean"], "errors": stats.errors(samples)}


class _Output:
    """Where bench.json and bench.md go (nowhere without --output)."""

    def __init__(self, uri: str | None) -> None:
        self.loc = storage.location(uri) if uri else None

    def write(self, report: BenchReport) -> None:
        if self.loc is not None:
            self.loc.child(BENCH_FILE).write_json(report.dump())

    def finish(self, report: BenchReport, table: str) -> None:
        self.write(report)
        if self.loc is not None:
            self.loc.child(BENCH_MARKDOWN).write_text(table)
            log.info("bench written to %s", self.loc.child(BENCH_FILE))


Note = Callable[[str], None]


def _counts_source(options: BenchOptions, server_kind: str, note: Note) -> str | None:
    """The /metrics URL to check counts against, or None when there is nothing to check with."""
    url = options.metrics_url or server_counts.metrics_url(options.endpoint)
    if server_kind != VLLM and not options.metrics_url:
        log.info("not a vLLM server: no server counters to check the counts against")
        return None
    try:
        server_counts.read(url)
    except server_counts.MetricsUnavailable as exc:
        note(f"the counts are not checked against the server's: {exc}")
        return None
    return url


async def _level_counts(url: str | None, before: server_counts.Counts | None, level: Any,
                        note: Note) -> tuple[int | None, int | None]:
    if url is None or before is None:
        return None, None
    expected = server_counts.Counts(level.completed, level.output_tokens)
    try:
        delta = await asyncio.to_thread(server_counts.settled, url, before, expected)
    except server_counts.MetricsUnavailable as exc:
        note(f"no server counts for the concurrency {level.concurrency} level: {exc}")
        return None, None
    return delta.completed, delta.output_tokens


async def _read_counts(url: str | None, note: Note) -> server_counts.Counts | None:
    if url is None:
        return None
    try:
        return await asyncio.to_thread(server_counts.read, url)
    except server_counts.MetricsUnavailable as exc:
        note(f"cannot read the server's counters: {exc}")
        return None


async def _levels(options: BenchOptions, output: _Output, report: BenchReport, client: Client) -> None:
    def note(text: str) -> None:
        log.warning("%s", text)
        if text not in report.notes:
            report.notes.append(text)

    server = await client.probe()
    report.server = server.kind
    counts_url = _counts_source(options, server.kind, note)
    workload = Workload()
    if options.warmup:
        samples, _ = await client.level(workload.take(options.warmup), 1)
        report.warmup = _warmup_record(samples)
        if not any(s.ok for s in samples):
            report.error = f"every warm-up request failed: {samples[0].error}"
            output.write(report)
            return
    for concurrency in options.concurrency:
        before = await _read_counts(counts_url, note)
        log.info("concurrency %d: %d requests", concurrency, options.requests)
        samples, duration = await client.level(workload.take(options.requests), concurrency)
        level = stats.level(concurrency, samples, duration)
        level.errors = stats.errors(samples)
        level.server_completed, level.server_output_tokens = await _level_counts(counts_url, before, level, note)
        report.levels.append(level)
        output.write(report)
        log.info("concurrency %d: %d completed, %d failed, %.1f output tok/s", concurrency, level.completed,
                 level.failed, level.output_throughput)
        if level.failed and (why := await client.unreachable()):
            report.error = (f"the endpoint stopped answering during the concurrency {concurrency} level "
                            f"({level.failed} of {len(samples)} requests failed): {why}")
            return
    report.complete = True


@contextlib.contextmanager
def _stop_on_sigterm(stopped: list[str]) -> Any:
    """SIGTERM (a Job deleted or preempted) cancels the sweep, which then writes what it has."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None

    def stop() -> None:
        stopped.append("SIGTERM")
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, stop)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def sweep(options: BenchOptions, output: _Output) -> BenchReport:
    report = BenchReport(complete=False, endpoint=options.endpoint, model=options.model,
                         max_tokens=options.max_tokens, fingerprint=options.fingerprint)
    stopped: list[str] = []
    try:
        with _stop_on_sigterm(stopped):
            async with Client(options.endpoint, options.model, max_tokens=options.max_tokens,
                              timeout=options.timeout, api_key=os.environ.get(env.API_KEY)) as client:
                await _levels(options, output, report, client)
    except EndpointError:
        if report.server is None:
            raise  # nothing was sent: one error, and no bench.json
        _stopped(report, output, "the endpoint failed")
    except asyncio.CancelledError:
        if not stopped:
            raise
        _stopped(report, output, f"stopped by {stopped[0]}")
    except Exception as exc:  # noqa: BLE001 - whatever it was, what was measured is written with it
        _stopped(report, output, f"{type(exc).__name__}: {exc}")
    return report


def _stopped(report: BenchReport, output: _Output, why: str) -> None:
    report.complete = False
    report.error = f"{why} after {len(report.levels)} level(s)"
    try:
        output.write(report)
    except Exception as exc:  # noqa: BLE001 - the store may be what failed
        log.error("could not write the partial %s: %s", BENCH_FILE, exc)


def _push(options: BenchOptions, report: BenchReport) -> None:
    gateway = options.pushgateway or os.environ.get(env.PUSHGATEWAY)
    if not gateway:
        return
    from .metrics import push

    # Metrics are for watching: a gateway that is down costs a warning (without the URL's credentials).
    push(gateway, report, serve=options.serve_name, revision=options.revision, namespace=options.namespace,
         model_name=options.model)


def run(options: BenchOptions) -> int:
    validate(options)
    if not log.isEnabledFor(logging.DEBUG):
        # A line per request from the HTTP client (openai's is httpx2) would bury the levels' summaries.
        for name in ("httpx", "httpx2"):
            logging.getLogger(name).setLevel(logging.WARNING)
    output = _Output(options.output)
    try:
        report = asyncio.run(sweep(options, output))
    except EndpointError as exc:
        print(f"kubetune-job bench: error: {exc}", file=sys.stderr)
        return 1
    table = reports.table(report)
    output.finish(report, table)
    print(table, end="")
    _push(options, report)
    for lv in report.levels:
        if lv.failed:
            log.warning("concurrency %d: %d of %d requests failed", lv.concurrency, lv.failed, lv.completed + lv.failed)
    if not report.complete:
        print(f"kubetune-job bench: error: sweep incomplete: {report.error}", file=sys.stderr)
        return 1
    empty = [lv.concurrency for lv in report.levels if lv.completed == 0]
    if empty:
        print(f"kubetune-job bench: error: no request completed at concurrency {', '.join(map(str, empty))}",
              file=sys.stderr)
        return 1
    return 0
