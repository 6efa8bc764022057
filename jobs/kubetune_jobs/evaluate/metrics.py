"""The `kubetune_eval_*` gauges pushed to a Prometheus Pushgateway: the one home of their names.

One push per evaluation, grouped by run and model, so a later evaluation of the same model replaces
its figures and other models' figures stay. Suite-wide figures carry `category="all"`. The push is
best-effort (`kubetune_jobs.pushgateway`): the report is the evaluation's result, the gauges a copy.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from ..pushgateway import Gateway

JOB = "kubetune-eval"
PREFIX = "kubetune_eval_"
# report aggregate key -> (metric name, help)
GAUGES = {
    "accuracy": (f"{PREFIX}accuracy", "share of items answered correctly (BFCL AST rules)"),
    "name_accuracy": (f"{PREFIX}function_name_accuracy", "share of call items with the right function names"),
    "false_call_rate": (f"{PREFIX}false_call_rate", "share of no-call items where the model called a function"),
    "missed_call_rate": (f"{PREFIX}missed_call_rate", "share of call items where the model called nothing"),
    "unparseable_rate": (f"{PREFIX}unparseable_rate", "share of items whose call markup did not decode"),
    "schema_violation_rate": (f"{PREFIX}schema_violation_rate", "share of calling items with arguments outside the schema"),
    "latency_p50_s": (f"{PREFIX}latency_p50_seconds", "median answer latency"),
    "latency_p95_s": (f"{PREFIX}latency_p95_seconds", "95th percentile answer latency"),
    "loss": (f"{PREFIX}chat_loss", "mean per-token loss on held-out assistant turns"),
    "perplexity": (f"{PREFIX}chat_perplexity", "perplexity on held-out assistant turns"),
    "win_rate": (f"{PREFIX}judge_win_rate", "pairwise judge win rate against the reference answers"),
    "items": (f"{PREFIX}items", "items in the suite"),
}
COMPLETE = (f"{PREFIX}complete", "1 when every item got an answer, 0 for a partial run")
LABELS = ("suite", "category")


def registry_for(report: dict[str, Any]) -> CollectorRegistry:
    registry = CollectorRegistry()
    gauges = {key: Gauge(name, doc, LABELS, registry=registry) for key, (name, doc) in GAUGES.items()}
    for suite, agg in report["suites"].items():
        for category, figures in [("all", agg), *agg.get("categories", {}).items()]:
            for key, gauge in gauges.items():
                value = figures.get(key)
                if isinstance(value, int | float) and value is not None:
                    gauge.labels(suite=suite, category=category).set(value)
    Gauge(*COMPLETE, registry=registry).set(1 if report["complete"] else 0)
    return registry


def push(gateway: str, report: dict[str, Any], *, run: str, model: str, timeout: float = 10.0) -> bool:
    """Push the report's gauges; False (with one warning logged) when they did not get there."""
    return Gateway(gateway).push(JOB, registry_for(report), {"run": run, "model": model}, timeout=timeout)
