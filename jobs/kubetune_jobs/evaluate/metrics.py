"""Pushing an evaluation's `kubetune_eval_*` gauges (named in `contract.metrics`) to a Pushgateway.

One push per evaluation under job `kubetune-eval`, grouped by namespace, run (or, for a promotion
gate, the ModelServe) and model, so a later evaluation of the same model replaces its figures and
other models' figures stay. Suite-wide figures carry `category="all"`. The push is best-effort
(`contract.pushgateway`): the report is the evaluation's result, the gauges a copy.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from ..contract import metrics as m
from ..contract.pushgateway import Gateway

# report aggregate key -> (metric, extra labels)
FIGURES: dict[str, tuple[m.Metric, dict[str, str]]] = {
    "accuracy": (m.EVAL_ACCURACY, {}),
    "name_accuracy": (m.EVAL_NAME_ACCURACY, {}),
    "false_call_rate": (m.EVAL_FALSE_CALL, {}),
    "missed_call_rate": (m.EVAL_MISSED_CALL, {}),
    "unparseable_rate": (m.EVAL_UNPARSEABLE, {}),
    "schema_violation_rate": (m.EVAL_SCHEMA_VIOLATION, {}),
    "latency_p50_s": (m.EVAL_LATENCY, {"statistic": "p50"}),
    "latency_p95_s": (m.EVAL_LATENCY, {"statistic": "p95"}),
    "loss": (m.EVAL_CHAT_LOSS, {}),
    "perplexity": (m.EVAL_CHAT_PERPLEXITY, {}),
    "win_rate": (m.EVAL_JUDGE_WIN, {}),
    "items": (m.EVAL_ITEMS, {}),
}


def registry_for(report: dict[str, Any]) -> CollectorRegistry:
    registry = CollectorRegistry()
    created = {metric.name: metric.create(registry) for metric in {metric for metric, _ in FIGURES.values()}}
    for suite, agg in report["suites"].items():
        for category, figures in [("all", agg), *agg.get("categories", {}).items()]:
            for key, (metric, extra) in FIGURES.items():
                value = figures.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    created[metric.name].labels(suite=suite, category=category, **extra).set(value)
    m.EVAL_COMPLETE.create(registry).set(1 if report["complete"] else 0)
    return registry


def grouping(*, namespace: str | None, run: str | None, serve: str | None, model: str) -> dict[str, str]:
    """A run's evaluations group by run; a promotion gate's by the ModelServe (never both)."""
    return m.EVAL_GROUP.key(namespace=namespace, run=None if serve else run, serve=serve, model=model)


def push(gateway: str, report: dict[str, Any], *, run: str, model: str, serve: str | None = None,
         namespace: str | None = None, timeout: float = 10.0) -> bool:
    """Push the report's gauges; False (with one warning logged) when they did not get there."""
    key = grouping(namespace=namespace, run=run, serve=serve, model=model)
    return Gateway(gateway).push(m.EVAL_GROUP.job, registry_for(report), key, timeout=timeout)
