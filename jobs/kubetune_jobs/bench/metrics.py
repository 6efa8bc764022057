"""The `kubetune_bench_*` metrics pushed to a Prometheus Pushgateway: the one home of their names.

One push per sweep under job `kubetune-bench`, grouped by the ModelServe (`serve`) and, when given,
its `revision`, so a later benchmark of the same revision replaces its figures. Per-level series
carry `concurrency`; latency series carry `statistic` (mean, p50, p95, p99). Units are base units
(seconds); counts of requests and tokens over the run are counters (`_total`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, push_to_gateway

from ..contract.records import BenchReport
from .report import counts_agree, scaling
from .stats import STATISTICS

JOB = "kubetune-bench"
PREFIX = "kubetune_bench_"
LEVEL = ("concurrency",)

# Counters: prometheus_client appends `_total` to the name given.
REQUESTS = (f"{PREFIX}requests", "requests sent at this concurrency, by outcome (completed, failed)")
OUTPUT_TOKENS = (f"{PREFIX}output_tokens", "output tokens of the completed requests (the server's usage)")
# Gauges: BenchLevel field -> (metric name, help)
GAUGES = {
    "duration_s": (f"{PREFIX}duration_seconds", "wall time of the level, first request sent to last finished"),
    "request_throughput": (f"{PREFIX}requests_per_second", "completed requests per second"),
    "output_throughput": (f"{PREFIX}output_tokens_per_second", "output tokens per second"),
    "total_token_throughput": (f"{PREFIX}tokens_per_second", "prompt and output tokens per second"),
}
LATENCY_GAUGES = {
    "ttft": (f"{PREFIX}time_to_first_token_seconds", "time from sending a request to its first token"),
    "tpot": (f"{PREFIX}time_per_output_token_seconds", "time per output token after the first, per request"),
    "itl": (f"{PREFIX}inter_token_latency_seconds", "time between streamed chunks"),
    "e2e": (f"{PREFIX}e2e_request_latency_seconds", "time from sending a request to its last chunk"),
}
SCALING = (f"{PREFIX}throughput_scaling_ratio", "output tokens per second over the single-request level's")
COUNTS_AGREE = (f"{PREFIX}server_counts_agree", "1 when the server's own counters match the completed "
                                                "requests and output tokens, 0 when not (absent without them)")
COMPLETE = (f"{PREFIX}complete", "1 when every level ran, 0 for a partial sweep")


def registry_for(report: BenchReport) -> CollectorRegistry:
    registry = CollectorRegistry()
    requests = Counter(*REQUESTS, (*LEVEL, "outcome"), registry=registry)
    tokens = Counter(*OUTPUT_TOKENS, LEVEL, registry=registry)
    gauges = {key: Gauge(name, doc, LEVEL, registry=registry) for key, (name, doc) in GAUGES.items()}
    latency = {key: Gauge(name, doc, (*LEVEL, "statistic"), registry=registry)
               for key, (name, doc) in LATENCY_GAUGES.items()}
    ratio = Gauge(*SCALING, LEVEL, registry=registry)
    agree = Gauge(*COUNTS_AGREE, LEVEL, registry=registry)
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
    Gauge(*COMPLETE, registry=registry).set(1 if report.complete else 0)
    return registry


def grouping(serve: str, revision: str | None) -> dict[str, str]:
    return {"serve": serve, **({"revision": revision} if revision else {})}


def push(gateway: str, report: BenchReport, *, serve: str, revision: str | None, timeout: float = 10.0) -> None:
    push_to_gateway(gateway, job=JOB, registry=registry_for(report), grouping_key=grouping(serve, revision),
                    timeout=timeout)
