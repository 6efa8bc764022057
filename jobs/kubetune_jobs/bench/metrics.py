"""Pushing a benchmark's `kubetune_bench_*` metrics (named in `contract.metrics`) to a Pushgateway.

One push per sweep under job `kubetune-bench`, grouped by the ModelServe's namespace, the ModelServe
(`serve`), the `revision` benchmarked and the served `model_name` (each when given), so a later
benchmark of the same revision replaces its figures. Per-level series carry `concurrency`; latency
series carry `statistic` (mean, p50, p95, p99). Units are base units (seconds); counts of requests
and tokens over the run are counters (`_total`). `push` raises what the gateway raised; the caller
(`run._push`) turns that into a warning.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from ..contract import metrics as m
from ..contract.pushgateway import Gateway
from ..contract.records import BenchReport
from .report import counts_agree, scaling
from .stats import STATISTICS

# BenchLevel field -> gauge
GAUGES = {"duration_s": m.BENCH_DURATION, "request_throughput": m.BENCH_REQUEST_THROUGHPUT,
          "output_throughput": m.BENCH_OUTPUT_THROUGHPUT, "total_token_throughput": m.BENCH_TOKEN_THROUGHPUT}
# BenchLevel field prefix (<prefix>_<statistic>_s) -> gauge
LATENCY_GAUGES = {"ttft": m.BENCH_TTFT, "tpot": m.BENCH_TPOT, "itl": m.BENCH_ITL, "e2e": m.BENCH_E2E}


def registry_for(report: BenchReport) -> CollectorRegistry:
    registry = CollectorRegistry()
    requests = m.BENCH_REQUESTS.create(registry)
    tokens = m.BENCH_OUTPUT_TOKENS.create(registry)
    gauges = {key: metric.create(registry) for key, metric in GAUGES.items()}
    latency = {key: metric.create(registry) for key, metric in LATENCY_GAUGES.items()}
    ratio = m.BENCH_SCALING.create(registry)
    agree = m.BENCH_COUNTS_AGREE.create(registry)
    ratios = scaling(report.levels)
    for lv in report.levels:
        c = str(lv.concurrency)
        requests.labels(concurrency=c, outcome="completed").inc(lv.completed)
        requests.labels(concurrency=c, outcome="failed").inc(lv.failed)
        tokens.labels(concurrency=c).inc(lv.output_tokens)
        for key, gauge in gauges.items():
            value = getattr(lv, key)
            if value is not None:
                gauge.labels(concurrency=c).set(value)
        for key, gauge in latency.items():
            for stat in STATISTICS:
                value = getattr(lv, f"{key}_{stat}_s")
                if value is not None:
                    gauge.labels(concurrency=c, statistic=stat).set(value)
        if lv.concurrency in ratios:
            ratio.labels(concurrency=c).set(ratios[lv.concurrency])
        if (same := counts_agree(lv)) is not None:
            agree.labels(concurrency=c).set(1 if same else 0)
    m.BENCH_COMPLETE.create(registry).set(1 if report.complete else 0)
    return registry


def grouping(serve: str, revision: str | None, *, namespace: str | None = None,
             model_name: str | None = None) -> dict[str, str]:
    return m.BENCH_GROUP.key(namespace=namespace, serve=serve, revision=revision, model_name=model_name)


def push(gateway: str, report: BenchReport, *, serve: str, revision: str | None, namespace: str | None = None,
         model_name: str | None = None, timeout: float = 10.0) -> bool:
    """Best-effort, as every push (contract.pushgateway): False after a warning when it did not happen."""
    return Gateway(gateway).push(m.BENCH_GROUP.job, registry_for(report),
                                 grouping(serve, revision, namespace=namespace, model_name=model_name), timeout=timeout)
