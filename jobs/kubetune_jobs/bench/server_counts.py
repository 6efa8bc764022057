"""The server's own counts, read from its Prometheus `/metrics`, to check the benchmark's against.

vLLM counts every generated token in `vllm:generation_tokens_total` and every finished request in
`vllm:request_success_total` (labelled by `finished_reason`; `abort` and `error` are requests that did
not complete). The difference of two readings, before and after a level, is what the server did in
that level: with no other traffic it must equal the completed requests and output tokens the
benchmark counted from the responses. The counters are summed over all their series (models,
engines), so other traffic on the server during a run shows up as a disagreement, as it should.

The text is parsed with prometheus_client's parser. A server without these families (not vLLM)
has no counts to compare; that is reported, not an error. The text is the server's, so it is not
trusted: a sample of these counters that is not a finite number (`+Inf`, `NaN`, which the text format
allows) is skipped and counted, and a reading with any is reported as unusable (its sums would be wrong).
"""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from ..contract.metrics import VLLM_GENERATION_TOKENS as GENERATION_TOKENS
from ..contract.metrics import VLLM_REQUEST_SUCCESS as REQUEST_SUCCESS

NOT_COMPLETED = ("abort", "error")  # finished_reason values of requests that did not complete


class MetricsUnavailable(RuntimeError):
    """The metrics cannot be read, or hold no vLLM counters."""


@dataclass(frozen=True)
class Counts:
    completed: int
    output_tokens: int

    def __sub__(self, other: Counts) -> Counts:
        return Counts(self.completed - other.completed, self.output_tokens - other.output_tokens)


def metrics_url(endpoint: str) -> str:
    """`/metrics` at the root of the server whose OpenAI API is `endpoint` (…/v1)."""
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, f"{path}/metrics", "", ""))


def parse(text: str) -> Counts:
    from prometheus_client.parser import text_string_to_metric_families

    tokens = completed = None
    skipped: list[str] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name not in (GENERATION_TOKENS, REQUEST_SUCCESS):
                continue
            if not math.isfinite(sample.value):
                skipped.append(f"{sample.name}{sample.labels or ''} {sample.value}")
            elif sample.name == GENERATION_TOKENS:
                tokens = (tokens or 0) + sample.value
            else:
                done = sample.labels.get("finished_reason") not in NOT_COMPLETED
                completed = (completed or 0) + (sample.value if done else 0)
    if skipped:
        raise MetricsUnavailable(f"{len(skipped)} sample(s) of the server's counters are not finite numbers and were "
                                 f"skipped (first: {skipped[0]}), so its counts cannot be summed")
    if tokens is None or completed is None:
        raise MetricsUnavailable(f"no {GENERATION_TOKENS} and {REQUEST_SUCCESS} among the metrics (not vLLM?)")
    return Counts(int(completed), int(tokens))


def read(url: str, timeout: float = 10.0) -> Counts:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            text = resp.read().decode("utf-8", errors="replace")
    except (OSError, urllib.error.URLError) as exc:
        raise MetricsUnavailable(f"cannot read {url}: {exc}") from exc
    try:
        return parse(text)
    except ValueError as exc:
        raise MetricsUnavailable(f"{url} is not Prometheus text: {exc}") from exc


def settled(url: str, before: Counts, expected: Counts, *, wait_s: float = 5.0, stable_s: float = 1.0,
            poll_s: float = 0.2) -> Counts:
    """What the server counted since `before`, once its counters stop moving. The server can send a
    request's last chunk a moment before it records the request, so a reading right after the last
    response may lag; this reads until the difference equals `expected`, or has not changed for
    `stable_s`, or `wait_s` has passed."""
    deadline = time.monotonic() + wait_s
    delta, since = read(url) - before, time.monotonic()
    while delta != expected and time.monotonic() < deadline:
        time.sleep(poll_s)
        again = read(url) - before
        if again != delta:
            delta, since = again, time.monotonic()
        elif time.monotonic() - since >= stable_s:
            break
    return delta
