"""The bench job's parts that need no server: the workload, the statistics, reading vLLM's counters,
the pushed metrics' names and values, the table, and option checks."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kubetune_jobs.bench import metrics, report, server_counts, stats, workload
from kubetune_jobs.bench.client import Sample
from kubetune_jobs.bench.run import BenchError, validate
from kubetune_jobs.contract import metrics as m
from kubetune_jobs.contract import records
from kubetune_jobs.contract.options import BenchOptions
from kubetune_jobs.contract.records import BenchLevel, BenchReport
from kubetune_jobs.evaluate.suites import seed_tools


def test_workload_alternates_tool_chats_and_chat_turns_without_repeating():
    w = workload.Workload()
    first, second = w.take(10), w.take(56)
    sent = first + second
    assert [r.kind for r in sent[:4]] == [workload.TOOLS, workload.CHAT, workload.TOOLS, workload.CHAT]
    assert len({r.id for r in sent}) == len(sent)  # levels do not replay each other's prompts
    assert [r.id for r in first] == [r.id for r in workload.Workload().take(10)]  # fixed order
    names = {t["function"]["name"] for t in seed_tools()}
    for r in sent:
        assert r.messages and r.messages[-1]["role"] == "user" and r.messages[-1]["content"]
        if r.kind == workload.TOOLS:
            assert {t["function"]["name"] for t in r.tools} == names
        else:
            assert r.tools is None and len(r.messages) >= 1


def _sample(ttft, e2e, tokens, itl=(), error=None, prompt=100):
    return Sample("r", "chat", start=10.0, end=10.0 + e2e, ttft=ttft, itl=list(itl), prompt_tokens=prompt,
                  output_tokens=tokens, error=error)


def test_level_figures_count_completed_requests_only():
    samples = [_sample(0.1, 1.1, 11, [0.1] * 10), _sample(0.3, 2.3, 21, [0.1] * 20),
               _sample(0.2, 5.0, None, [0.1], error="timed out after 5 s")]
    lv = stats.level(4, samples, duration_s=4.0)
    assert (lv.concurrency, lv.completed, lv.failed, lv.output_tokens) == (4, 2, 1, 32)
    assert lv.request_throughput == 0.5 and lv.output_throughput == 8.0
    assert lv.total_token_throughput == (200 + 32) / 4.0
    assert lv.tpot_mean_s == pytest.approx(0.1)  # (1.1 - 0.1) / 10 and (2.3 - 0.3) / 20
    assert lv.ttft_p50_s == pytest.approx(float(np.percentile([0.1, 0.3], 50)))
    assert lv.e2e_p99_s == pytest.approx(float(np.percentile([1.1, 2.3], 99)))
    assert lv.itl_mean_s == pytest.approx(0.1)
    assert stats.errors(samples) == {"timed out after 5 s": 1}


def test_a_completed_request_without_a_first_token_time_counts_in_throughput_only():
    # A server's tool-call parser may hold back every token of a reply: usage, but no streamed chunk.
    lv = stats.level(1, [_sample(0.1, 1.1, 11, [0.1] * 10), _sample(None, 3.0, 11)], duration_s=4.0)
    assert (lv.completed, lv.failed, lv.output_tokens) == (2, 0, 22)
    assert lv.ttft_mean_s == pytest.approx(0.1) and lv.tpot_mean_s == pytest.approx(0.1)
    assert lv.e2e_mean_s == pytest.approx(2.05)


def test_a_level_with_nothing_completed_has_counts_and_no_latencies():
    lv = stats.level(2, [_sample(None, 1.0, None, error="boom")] * 2, duration_s=1.0)
    assert (lv.completed, lv.failed, lv.output_tokens, lv.output_throughput) == (0, 2, 0, 0.0)
    assert lv.ttft_p50_s is None and lv.e2e_mean_s is None


def _vllm_like_metrics(tokens: float, reasons: dict[str, float]) -> str:
    registry = CollectorRegistry()
    Counter("vllm:generation_tokens", "tokens", ["model_name", "engine"], registry=registry).labels(
        model_name="m", engine="0").inc(tokens)
    success = Counter("vllm:request_success", "finished", ["model_name", "engine", "finished_reason"],
                      registry=registry)
    for reason, n in reasons.items():
        success.labels(model_name="m", engine="0", finished_reason=reason).inc(n)
    return generate_latest(registry).decode()


def test_server_counts_from_prometheus_text():
    text = _vllm_like_metrics(130, {"stop": 3, "length": 5, "abort": 2, "error": 1})
    assert server_counts.parse(text) == server_counts.Counts(completed=8, output_tokens=130)
    a, b = server_counts.Counts(8, 130), server_counts.Counts(3, 30)
    assert a - b == server_counts.Counts(5, 100)
    with pytest.raises(server_counts.MetricsUnavailable, match="not vLLM"):
        server_counts.parse("# TYPE other_total counter\nother_total 1\n")


@pytest.mark.parametrize("value", ["+Inf", "-Inf", "NaN"])
@pytest.mark.parametrize("name", ["vllm:generation_tokens_total", 'vllm:request_success_total{finished_reason="stop"}'])
def test_a_counter_sample_that_is_not_finite_is_skipped_counted_and_named(name, value):
    """The text format allows +Inf and NaN as values; `int()` of one crashed the bench (no bench.json)."""
    base = _vllm_like_metrics(130, {"stop": 3})
    other = name.replace("{", '{engine="1",') if "{" in name else name + '{engine="1"}'
    with pytest.raises(server_counts.MetricsUnavailable, match=r"1 sample\(s\) .* not finite numbers and were skipped"):
        server_counts.parse(base + f"{other} {value}\n")
    # A non-finite sample of another family is none of its business.
    assert server_counts.parse(base + f"vllm:gpu_cache_usage_perc {value}\n") == server_counts.Counts(3, 130)


def test_bench_json_with_a_figure_that_is_not_finite_is_not_a_bench_report():
    """What the operator and `kubetune serve` read of bench.json: NaN would reach the status (not JSON)."""
    good = BenchReport(complete=True, endpoint="e", model="m", max_tokens=4, levels=[_level(1, 50.0)])
    text = good.model_dump_json()
    assert records.read(BenchReport, text) == good
    for bad in ("NaN", "Infinity", "-Infinity", "1e999"):
        assert records.read(BenchReport, text.replace('"output_throughput":50.0', f'"output_throughput":{bad}')) is None


@pytest.mark.parametrize(("endpoint", "url"), [
    ("http://svc:8000/v1", "http://svc:8000/metrics"),
    ("http://svc:8000/v1/", "http://svc:8000/metrics"),
    ("https://gw.example/models/demo/v1", "https://gw.example/models/demo/metrics"),
    ("http://svc:8000", "http://svc:8000/metrics"),
])
def test_metrics_url_next_to_the_api(endpoint, url):
    assert server_counts.metrics_url(endpoint) == url


def _level(c, tok_s, **kw):
    return BenchLevel(concurrency=c, completed=8, failed=0, duration_s=10.0, request_throughput=0.8,
                      output_tokens=int(tok_s * 10), output_throughput=tok_s, ttft_p50_s=0.2, e2e_p50_s=1.0, **kw)


def test_pushed_metrics_follow_prometheus_conventions():
    rep = BenchReport(complete=True, endpoint="http://e/v1", model="m", max_tokens=16, server="vllm",
                      levels=[_level(1, 10.0, server_completed=8, server_output_tokens=100),
                              _level(8, 50.0, server_completed=8, server_output_tokens=499)])
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(metrics.registry_for(rep)).decode())}
    assert families and all(name.startswith("kubetune_bench_") for name in families)
    for f in families.values():
        if f.type == "counter":
            assert all(s.name.endswith("_total") or s.name.endswith("_created") for s in f.samples), f.name
    for metric in metrics.LATENCY_GAUGES.values():
        assert metric.name.endswith("_seconds")
    assert m.BENCH_SCALING.name.endswith("_ratio")
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert values[(m.BENCH_SCALING.name, (("concurrency", "8"),))] == 5.0
    assert values[(m.BENCH_REQUESTS.name, (("concurrency", "8"), ("outcome", "completed")))] == 8
    assert values[(m.BENCH_COUNTS_AGREE.name, (("concurrency", "1"),))] == 1
    assert values[(m.BENCH_COUNTS_AGREE.name, (("concurrency", "8"),))] == 0  # 499 tokens counted by the server
    assert values[(m.BENCH_TTFT.name, (("concurrency", "1"), ("statistic", "p50")))] == 0.2
    assert metrics.grouping("demo", None) == {"serve": "demo"}
    assert metrics.grouping("demo", "r1", namespace="team-a", model_name="m") == {
        "namespace": "team-a", "serve": "demo", "revision": "r1", "model_name": "m"}


def test_table_sets_the_origin_figures_beside_ours():
    rep = BenchReport(complete=False, endpoint="http://e/v1", model="m", max_tokens=16, server="vllm",
                      levels=[_level(1, 10.0), _level(8, 45.0, server_completed=7, server_output_tokens=450)],
                      error="the endpoint stopped answering")
    text = report.table(rep)
    rows = [ln for ln in text.splitlines() if ln.startswith("| 1 |") or ln.startswith("| 8 |")]
    assert "| 50 | 1.0x |" in rows[0] and "| 368 | 7.4x |" in rows[1]
    assert "| 4.5x |" in rows[1] and "server 7 req / 450 tok" in rows[1]
    assert "INCOMPLETE: the endpoint stopped answering" in text
    assert report.scaling([_level(4, 10.0)]) == {}  # no single-request level: no ratio


@pytest.mark.parametrize(("change", "flag"), [
    ({"concurrency": (1, 0)}, "--concurrency 0"), ({"concurrency": ()}, "--concurrency"),
    ({"requests": 0}, "--requests 0"), ({"max_tokens": 0}, "--max-tokens 0"), ({"warmup": -1}, "--warmup -1"),
    ({"timeout": 0.0}, "--timeout 0"),
])
def test_bad_options_name_the_flag(change, flag):
    with pytest.raises(BenchError, match=flag):
        validate(BenchOptions(endpoint="http://e/v1", model="m", **change))


def test_options_round_trip_through_the_command_line():
    opts = BenchOptions(endpoint="http://e/v1", model="m", concurrency=(1, 8, 32), requests=16, max_tokens=64)
    argv = opts.command_line()
    assert argv[0] == "bench" and "1,8,32" in argv
    assert BenchOptions.parse(argv[1:]) == opts
