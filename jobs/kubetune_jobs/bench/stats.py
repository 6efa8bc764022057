"""One concurrency level's figures, defined as `vllm bench serve` defines them.

Throughputs divide by the level's duration (first request sent to last one finished) and count
completed requests only. TTFT and end-to-end latency are per request; TPOT is a request's time after
its first token over its remaining tokens, `(e2e - ttft) / (output_tokens - 1)`; ITL is every gap
between streamed chunks, all requests together. Percentiles interpolate linearly (numpy's default, as
vLLM's). A level where nothing completed has counts and no latency figures.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..contract.records import BenchLevel
from .client import Sample

STATISTICS = ("mean", "p50", "p95", "p99")
LATENCIES = ("ttft", "tpot", "itl", "e2e")


def summary(values: Sequence[float]) -> dict[str, float | None]:
    """mean, p50, p95 and p99 of `values` (None each when there are none)."""
    if not values:
        return dict.fromkeys(STATISTICS)
    import numpy as np

    arr = np.asarray(values, dtype=float)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {"mean": float(arr.mean()), "p50": float(p50), "p95": float(p95), "p99": float(p99)}


def latencies(samples: Sequence[Sample]) -> dict[str, list[float]]:
    done = [s for s in samples if s.ok]
    return {
        "ttft": [s.ttft for s in done if s.ttft is not None],
        "tpot": [(s.e2e - s.ttft) / (s.output_tokens - 1) for s in done
                 if s.ttft is not None and s.output_tokens is not None and s.output_tokens > 1],
        "itl": [gap for s in done for gap in s.itl],
        "e2e": [s.e2e for s in done],
    }


def level(concurrency: int, samples: Sequence[Sample], duration_s: float) -> BenchLevel:
    done = [s for s in samples if s.ok]
    output_tokens = sum(s.output_tokens or 0 for s in done)
    prompt_tokens = sum(s.prompt_tokens or 0 for s in done)
    figures: dict[str, float | None] = {}
    for name, values in latencies(samples).items():
        for stat, value in summary(values).items():
            figures[f"{name}_{stat}_s"] = value
    per_s = (lambda n: n / duration_s) if duration_s > 0 else (lambda n: 0.0)
    return BenchLevel(
        concurrency=concurrency, completed=len(done), failed=len(samples) - len(done), duration_s=duration_s,
        request_throughput=per_s(len(done)), output_tokens=output_tokens, output_throughput=per_s(output_tokens),
        total_token_throughput=per_s(prompt_tokens + output_tokens), **figures,
    )


def errors(samples: Sequence[Sample]) -> dict[str, int]:
    """How many requests failed for each reason, most frequent first."""
    counts: dict[str, int] = {}
    for s in samples:
        if s.error is not None:
            counts[s.error] = counts.get(s.error, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
