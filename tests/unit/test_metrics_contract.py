"""Every kubetune_* metric is defined once (contract.metrics), follows Prometheus' conventions, and what each
writer exposes passes `promtool check metrics`: the operator's registry, the train, evaluate and bench
pushes. Pushed groups carry the namespace, and the deletion rules pick a run's or a serve's groups only."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kubetune_jobs.bench import metrics as bench_metrics
from kubetune_jobs.contract import metrics as m
from kubetune_jobs.contract.options import ProbeOptions
from kubetune_jobs.contract.records import BenchLevel, BenchReport, ProbeHealth
from kubetune_jobs.evaluate import metrics as eval_metrics
from kubetune_jobs.probe.run import Exporter
from kubetune_jobs.train.metrics import MetricsPusher
from kubetune_operator import metrics as operator_metrics

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="Debian's prometheus (promtool) is installed by "
                                                             "scripts/bootstrap.sh")


def promtool_check(text: bytes) -> str:
    """promtool's lint findings ('' when clean); its exit status 3 means findings, anything else a failure."""
    assert PROMTOOL is not None
    out = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True)
    assert out.returncode in (0, 3), out.stderr.decode()
    return (out.stdout + out.stderr).decode().strip()


def test_names_are_unique_prefixed_and_conventional() -> None:
    names = [metric.name for metric in m.ALL]
    assert len(names) == len(set(names))
    for metric in m.ALL:
        assert metric.name.startswith(("kubetune_operator_", "kubetune_train_", "kubetune_eval_", "kubetune_bench_",
                                       "kubetune_probe_"))
        assert metric.help[:1].isupper() or metric.help[:1].isdigit(), metric.name
        if metric.help.startswith("Share") or " win rate " in metric.help:
            assert metric.name.endswith("_ratio"), metric.name
        if metric.kind == "histogram":
            assert metric.name.endswith("_seconds") and metric.buckets, metric.name
    with pytest.raises(ValueError, match="_total"):
        m.Metric("kubetune_x_total", "gauge", "X")
    with pytest.raises(ValueError, match="_total"):
        m.Metric("kubetune_x", "counter", "X")


@needs_promtool
def test_every_defined_metric_passes_promtool() -> None:
    registry = CollectorRegistry()
    for metric in m.ALL:
        family = metric.create(registry)
        child = family.labels(*["x"] * len(metric.labels)) if metric.labels else family
        if metric.kind == "counter":
            child.inc()
        elif metric.kind == "gauge":
            child.set(1)
        else:
            child.observe(1)
    assert promtool_check(generate_latest(registry)) == ""


def _report() -> BenchReport:
    level = BenchLevel(concurrency=1, completed=4, failed=0, duration_s=2.0, request_throughput=2.0, output_tokens=64,
                       output_throughput=32.0, ttft_p50_s=0.1, e2e_p50_s=0.5, server_completed=4,
                       server_output_tokens=64)
    return BenchReport(complete=True, endpoint="http://e/v1", model="m", max_tokens=16, server="vllm", levels=[level])


EVAL_REPORT = {"complete": True, "suites": {"seed-tools": {
    "accuracy": 0.5, "false_call_rate": 0.25, "missed_call_rate": 0.0, "unparseable_rate": 0.0,
    "schema_violation_rate": 0.1, "latency_p50_s": 0.2, "latency_p95_s": 0.4, "items": 8,
    "categories": {"no_call": {"accuracy": 1.0, "false_call_rate": 0.0, "items": 2}}}}}


@needs_promtool
def test_what_each_writer_exposes_passes_promtool() -> None:
    pusher = MetricsPusher("http://127.0.0.1:9/", "ft", "tools", "team-a")
    for name, value in {"kubetune_train_step": 3, "kubetune_train_planned_steps": 10, "kubetune_train_loss": 1.5,
                        "kubetune_train_tokens_total": 4096, "kubetune_train_learning_rate": 2e-4}.items():
        if name == m.TRAIN_TOKENS.name:
            pusher.metrics[name].inc(value)
        else:
            pusher.metrics[name].set(value)
    operator_metrics.run_seen("team-a", "ft", "Running", None, None, (("prepare-tools",),))
    operator_metrics.serve_seen("team-a", "assistant", "assistant", True, 1, [("RolledOut", "RolledOut")])
    operator = generate_latest(REGISTRY)  # what the operator serves, prometheus_client's process metrics too
    assert m.RUN_PHASE.name.encode() in operator and m.SERVE_DECISIONS.name.encode() in operator
    probe = Exporter(ProbeOptions(endpoint="http://e/v1", model="assistant", suite=("seed-tools:4",)))
    probe.export(ProbeHealth(items=4, answered=4, accuracy=0.5, failed=0.0, unparseable=0.25, schema_violation=None, call=0.5,
                        no_call=1.0, latency_p50_s=0.2, latency_p95_s=0.4))
    for text in (generate_latest(pusher.registry), generate_latest(eval_metrics.registry_for(EVAL_REPORT)),
                 generate_latest(bench_metrics.registry_for(_report())), generate_latest(probe.registry), operator):
        assert text and promtool_check(text) == "", text.decode()[:2000]
    operator_metrics.forget_run("team-a", "ft")
    operator_metrics.forget_serve("team-a", "assistant")


def test_the_evaluation_push_maps_the_report_onto_ratios() -> None:
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(generate_latest(eval_metrics.registry_for(EVAL_REPORT)).decode())
               for s in f.samples}
    assert samples[(m.EVAL_ACCURACY.name, (("category", "all"), ("suite", "seed-tools")))] == 0.5
    assert samples[(m.EVAL_FALSE_CALL.name, (("category", "no_call"), ("suite", "seed-tools")))] == 0.0
    assert samples[(m.EVAL_LATENCY.name, (("category", "all"), ("statistic", "p95"), ("suite", "seed-tools")))] == 0.4
    assert samples[(m.EVAL_COMPLETE.name, ())] == 1


def test_pushed_groups_carry_the_namespace_and_deletion_picks_only_the_owners() -> None:
    assert MetricsPusher("http://gw:9091", "ft", "tools", "team-a").grouping == {
        "namespace": "team-a", "run": "ft", "stage": "tools"}
    assert MetricsPusher("http://gw:9091", "ft", "tools").grouping == {"run": "ft", "stage": "tools"}  # by hand
    run_eval = eval_metrics.grouping(namespace="team-a", run="ft", serve=None, model="base")
    gate_eval = eval_metrics.grouping(namespace="team-a", run="ft", serve="ft", model="r1")
    assert run_eval == {"namespace": "team-a", "run": "ft", "model": "base"}
    assert gate_eval == {"namespace": "team-a", "serve": "ft", "model": "r1"}  # a serve named like a run
    bench = bench_metrics.grouping("ft", "r1", namespace="team-a", model_name="assistant")
    groups = [{"job": m.TRAIN_GROUP.job, "namespace": "team-a", "run": "ft", "stage": "tools"},
              {"job": m.EVAL_GROUP.job, **run_eval}, {"job": m.EVAL_GROUP.job, **gate_eval},
              {"job": m.BENCH_GROUP.job, **bench},
              {"job": m.PROBE_GROUP.job, **m.PROBE_GROUP.key(namespace="team-a", serve="ft", revision="r1",
                                                              model_name="assistant")},
              {"job": m.TRAIN_GROUP.job, "namespace": "team-b", "run": "ft", "stage": "tools"},
              {"job": "someone-else", "namespace": "team-a", "run": "ft"}]
    assert [g for g in groups if m.run_owns(g, "team-a", "ft")] == groups[:2]
    assert [g for g in groups if m.serve_owns(g, "team-a", "ft")] == groups[2:5]
    with pytest.raises(ValueError, match="not grouping labels"):
        m.TRAIN_GROUP.key(serve="x")
