"""ModelServe with the operator really running (kopf) against kopf's API emulator (kmock), S3 over HTTP (moto).

The tests play the Deployment and Job controllers (they mark replicas ready and Jobs finished) and write what
the jobs would have written (bench.json, report.json) to the store.
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from conftest import padded
from kubetune_jobs.contract import metrics as m
from kubetune_jobs.contract import records
from kubetune_jobs.contract.layout import (
    COMPLETE_MARKER,
    COMPLETE_MARKER_MAX_BYTES,
    ServeLayout,
    join,
    marker_digest,
)
from kubetune_jobs.storage import location
from kubetune_operator.finetunerun import api as ftr_api
from kubetune_operator.modelserve import api, resources
from support.kmock_cluster import EmulatedCluster, OperatorThread, wait_for

NS = "default"


@pytest.fixture
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster() as c:
        yield c


def secret(cluster: EmulatedCluster, name: str, data: dict[str, str]) -> None:
    cluster.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
                    "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}, plural="secrets")


@pytest.fixture
def store(s3_server: str, s3_endpoint: str, cluster: EmulatedCluster) -> dict:
    secret(cluster, "store", {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    secret(cluster, "serve-key", {"api-key": "sk-test-not-for-logs"})
    return {"endpoint": s3_endpoint, "bucket": s3_server.removeprefix("s3://"), "credentialsSecret": "store"}


def model(store: dict, name: str) -> str:
    """A complete model directory in the store (what a train job publishes)."""
    uri = f"s3://{store['bucket']}/models/{name}"
    location(uri).child("config.json").write_text(json.dumps({"model_type": "llama", "name": name}))
    location(join(uri, COMPLETE_MARKER)).write_text(json.dumps({"config.json": {"size": 1, "sha256": name}}))
    return uri


def manifest(name: str, store: dict, model_: dict, **spec) -> dict:
    body = {"model": model_, "storage": store, "apiKeySecret": {"name": "serve-key"},
            "benchmark": {"enabled": False}, **spec}
    return {"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": name, "namespace": NS}, "spec": body}


def serve(cluster: EmulatedCluster, name: str) -> dict:
    return cluster.get(api.API_VERSION, api.PLURAL, NS, name) or {}


def status(cluster: EmulatedCluster, name: str) -> dict:
    return serve(cluster, name).get("status") or {}


def condition(cluster: EmulatedCluster, name: str, type_: str) -> dict:
    return next((c for c in status(cluster, name).get("conditions") or [] if c["type"] == type_), {})


def deployments(cluster: EmulatedCluster, name: str) -> dict[str, dict]:
    """revision -> its Deployment (the live probe's has no revision)."""
    return {d["metadata"]["labels"][resources.LABEL_REVISION]: d for d in cluster.list("apps/v1", "deployments", NS)
            if d["metadata"]["labels"].get(resources.LABEL_SERVE) == name
            and resources.LABEL_REVISION in d["metadata"]["labels"]}


def jobs(cluster: EmulatedCluster, name: str) -> dict[str, dict]:
    return {j["metadata"]["name"]: j for j in cluster.list("batch/v1", "jobs", NS)
            if j["metadata"]["labels"].get(resources.LABEL_SERVE) == name}


def make_ready(cluster: EmulatedCluster, dep: dict, ready: int | None = None) -> None:
    """What the Deployment controller writes once the pods pass their readiness probe."""
    n = dep["spec"]["replicas"] if ready is None else ready
    cluster.patch("apps/v1", "deployments", NS, dep["metadata"]["name"],
                  {"status": {"replicas": dep["spec"]["replicas"], "readyReplicas": n, "availableReplicas": n,
                              "updatedReplicas": n, "observedGeneration": 1}}, subresource="status")


def rollout(cluster: EmulatedCluster, name: str, exclude: set[str] = frozenset()) -> str:
    """Wait for a new revision's Deployment, make it ready, return the revision."""
    found = wait_for(lambda: [r for r in deployments(cluster, name) if r not in exclude], what="a new Deployment")
    assert len(found) == 1, found
    make_ready(cluster, deployments(cluster, name)[found[0]])
    return found[0]


def test_waits_for_its_run_then_rolls_out_and_serves(cluster: EmulatedCluster, store: dict) -> None:
    run = {"apiVersion": ftr_api.API_VERSION, "kind": ftr_api.KIND, "metadata": {"name": "ft", "namespace": NS},
           "spec": {"baseModel": "Qwen/Qwen2.5-3B", "stages": [{"name": "tools", "dataset": {
               "source": "x", "format": "xlam", "noCallSource": "y"}}]}}
    with OperatorThread(cluster.url):
        cluster.create(run)  # the operator runs it: its first step starts, the run is Running
        cluster.create(manifest("assistant", store, {"fineTuneRun": {"name": "ft"}}))
        wait_for(lambda: condition(cluster, "assistant", "Ready").get("reason") == "WaitingForRun", what="waiting")
        assert "waiting for FineTuneRun 'ft'" in condition(cluster, "assistant", "Ready")["message"]
        assert deployments(cluster, "assistant") == {}
        uri = model(store, "ft-tools")
        # The run finishing (its reconciled generation recorded, so its own controller leaves it be).
        cluster.patch(ftr_api.API_VERSION, ftr_api.PLURAL, NS, "ft", {"status": {
            "phase": "Succeeded", "observedGeneration": 1, "artifacts": {"finalModel": uri, "models": {"tools": uri}}}},
                      subresource="status")
        rev = rollout(cluster, "assistant")
        wait_for(lambda: condition(cluster, "assistant", "Ready").get("status") == "True", what="Ready")
        st = status(cluster, "assistant")
        assert st["model"] == {"revision": rev, "source": "finetunerun/ft", "uri": uri,
                               "digest": st["model"]["digest"]} and len(st["model"]["digest"]) == 64
        assert st["endpoint"] == "http://assistant.default.svc.cluster.local:8000/v1" and st["ready"] == "1/1"
        svc = cluster.get("v1", "services", NS, "assistant")
        assert svc["spec"]["selector"][resources.LABEL_REVISION] == rev
        dep = deployments(cluster, "assistant")[rev]
        pod = dep["spec"]["template"]["spec"]
        assert pod["initContainers"][0]["args"][:3] == ["fetch", "--model", uri]
        reasons = [e.get("reason") for e in cluster.list("v1", "events", NS)
                   if e.get("involvedObject", {}).get("name") == "assistant"]
        assert "RolledOut" in reasons
        assert "sk-test-not-for-logs" not in json.dumps(st) + json.dumps(dep)


def test_a_model_change_rolls_out_beside_and_replaces_the_old_revision(cluster: EmulatedCluster, store: dict) -> None:
    with OperatorThread(cluster.url):
        cluster.create(manifest("swap", store, {"uri": model(store, "m1")}))
        first = rollout(cluster, "swap")
        wait_for(lambda: status(cluster, "swap").get("model", {}).get("revision") == first, what="first serving")
        cluster.patch(api.API_VERSION, api.PLURAL, NS, "swap", {"spec": {"model": {"uri": model(store, "m2")}}})
        second = wait_for(lambda: [r for r in deployments(cluster, "swap") if r != first], what="second revision")[0]
        assert status(cluster, "swap")["model"]["revision"] == first, "the old revision serves until the new is Ready"
        make_ready(cluster, deployments(cluster, "swap")[second])
        wait_for(lambda: status(cluster, "swap").get("model", {}).get("revision") == second, what="switch")
        wait_for(lambda: first not in deployments(cluster, "swap"), what="old revision gone")
        assert cluster.get("v1", "services", NS, "swap")["spec"]["selector"][resources.LABEL_REVISION] == second
        assert [h["decision"] for h in status(cluster, "swap")["history"]] == ["RolledOut", "RolledOut"]
    # Dozens of reconciles, one question of which APIs the cluster serves (kube.context.Context.api_groups).
    assert cluster.emulator.served["GET /apis/"] == 1


def test_a_missing_secret_gets_a_condition_and_no_deployment(cluster: EmulatedCluster, store: dict) -> None:
    with OperatorThread(cluster.url):
        body = manifest("nokey", store, {"uri": model(store, "m")})
        body["spec"]["apiKeySecret"] = {"name": "absent"}
        cluster.create(body)
        cond = wait_for(lambda: condition(cluster, "nokey", "Ready").get("reason") == "SecretNotFound"
                        and condition(cluster, "nokey", "Ready"), what="SecretNotFound")
        assert cond["message"].startswith("spec.apiKeySecret: Secret 'absent' not found")
        assert deployments(cluster, "nokey") == {}


def test_deletion_removes_what_it_owns_and_a_restart_duplicates_nothing(cluster: EmulatedCluster, store: dict) -> None:
    with OperatorThread(cluster.url):
        cluster.create(manifest("gone", store, {"uri": model(store, "m")}))
        rev = rollout(cluster, "gone")
        wait_for(lambda: condition(cluster, "gone", "Ready").get("status") == "True", what="Ready")
    with OperatorThread(cluster.url):  # a restart: adopts, creates nothing twice
        wait_for(lambda: status(cluster, "gone").get("observedGeneration") == 1, what="resumed")
        import time

        time.sleep(1.0)  # a few resync periods
        assert list(deployments(cluster, "gone")) == [rev]
        svcs = [s["metadata"]["name"] for s in cluster.list("v1", "services", NS)
                if s["metadata"]["labels"].get(resources.LABEL_SERVE) == "gone"]
        assert sorted(svcs) == sorted(["gone", f"gone-{rev}"])
        cluster.delete(api.API_VERSION, api.PLURAL, NS, "gone")
        wait_for(lambda: not serve(cluster, "gone"), what="deleted")
    assert deployments(cluster, "gone") == {}
    assert not [s for s in cluster.list("v1", "services", NS) if s["metadata"]["labels"].get(resources.LABEL_SERVE)]


# ---------------------------------------------------------------- promotion

def gated(name: str, store: dict, uri: str, timeout: int = 600, **gate) -> dict:
    return manifest(name, store, {"uri": uri}, promotion={
        "enabled": True, "suites": [{"name": "seed-tools"}], "gate": gate, "readinessTimeoutSeconds": timeout})


def report(store: dict, serve_name: str, rev: str, accuracy: float) -> None:
    """What the evaluation Job writes (Python's JSON writes a NaN as `NaN`)."""
    layout = ServeLayout.of(f"s3://{store['bucket']}", NS, serve_name)
    location(layout.report(rev)).write_text(json.dumps(
        {"complete": True, "suites": {"seed-tools": {"accuracy": accuracy, "false_call_rate": 0.0}}}))


def finish(cluster: EmulatedCluster, name: str, succeeded: bool = True) -> None:
    cluster.finish_job(NS, name, succeeded=succeeded)


def to_candidate(cluster: EmulatedCluster, store: dict, name: str, **gate) -> tuple[str, str]:
    cluster.create(gated(name, store, model(store, f"{name}-1"), **gate))
    first = rollout(cluster, name)
    wait_for(lambda: status(cluster, name).get("model", {}).get("revision") == first, what="serving")
    cluster.patch(api.API_VERSION, api.PLURAL, NS, name, {"spec": {"model": {"uri": model(store, f"{name}-2")}}})
    second = rollout(cluster, name, exclude={first})
    return first, second


def gate_jobs(cluster: EmulatedCluster, name: str) -> dict[str, str]:
    """revision -> the name of its evaluation Job."""
    found = wait_for(lambda: len([j for j in jobs(cluster, name) if "-gate-" in j]) == 2 and jobs(cluster, name),
                     what="two evaluation Jobs")
    return {j["metadata"]["labels"][resources.LABEL_REVISION]: n for n, j in found.items() if "-gate-" in n}


def test_a_better_candidate_is_promoted(cluster: EmulatedCluster, store: dict) -> None:
    with OperatorThread(cluster.url):
        first, second = to_candidate(cluster, store, "better", minMargin=0.05)
        evals = gate_jobs(cluster, "better")
        wait_for(lambda: condition(cluster, "better", "Progressing").get("reason") == "Evaluating", what="Evaluating")
        report(store, "better", first, 0.30)
        report(store, "better", second, 0.45)
        for job in evals.values():
            finish(cluster, job)
        wait_for(lambda: status(cluster, "better").get("model", {}).get("revision") == second, what="promoted")
        wait_for(lambda: first not in deployments(cluster, "better"), what="old revision gone")
        entry = wait_for(lambda: status(cluster, "better")["history"][-1], what="history")
        assert entry["decision"] == "Promoted" and "0.450 vs 0.300" in entry["message"]


def test_a_worse_candidate_is_rejected_and_the_serving_one_stays(cluster: EmulatedCluster, store: dict) -> None:
    with OperatorThread(cluster.url):
        first, second = to_candidate(cluster, store, "worse")
        evals = gate_jobs(cluster, "worse")
        report(store, "worse", first, 0.40)
        report(store, "worse", second, 0.20)
        for job in evals.values():
            finish(cluster, job)
        wait_for(lambda: second not in deployments(cluster, "worse"), what="candidate removed")
        wait_for(lambda: status(cluster, "worse")["history"][-1]["reason"] == "PromotionRejected", what="rejection")
        st = status(cluster, "worse")
        assert st["model"]["revision"] == first
        assert condition(cluster, "worse", "Ready")["status"] == "True"
        assert cluster.get("v1", "services", NS, "worse")["spec"]["selector"][resources.LABEL_REVISION] == first


def numbers(node: object) -> list[float]:
    if isinstance(node, dict):
        return [n for v in node.values() for n in numbers(v)]
    if isinstance(node, list):
        return [n for v in node for n in numbers(v)]
    return [float(node)] if isinstance(node, int | float) and not isinstance(node, bool) else []


def test_a_candidate_whose_report_holds_nan_is_rejected_naming_it(cluster: EmulatedCluster, store: dict) -> None:
    """NaN compares false with everything, so a gate that only asks "below the minimum?" lets it through; and
    a status holding it is not JSON (an API server refuses the whole write)."""
    with OperatorThread(cluster.url):
        first, second = to_candidate(cluster, store, "nan", minAccuracy={"seed-tools": 0.5}, minMargin=0.05,
                                     maxFalseCallRate=0.1)
        evals = gate_jobs(cluster, "nan")
        report(store, "nan", first, 0.60)
        report(store, "nan", second, math.nan)
        for job in evals.values():
            finish(cluster, job)
        entry = wait_for(lambda: (status(cluster, "nan").get("history") or [{}])[-1].get("decision") == "Rejected"
                         and status(cluster, "nan")["history"][-1], what="rejection")
        st = status(cluster, "nan")
        assert st["model"]["revision"] == first and entry["revision"] == second
        assert "suites.seed-tools.accuracy is NaN" in entry["message"]
        assert "suites.seed-tools.accuracy is NaN" in condition(cluster, "nan", "Progressing")["message"]
        events = wait_for(lambda: [e for e in cluster.list("v1", "events", NS)
                                   if e.get("involvedObject", {}).get("name") == "nan"
                                   and "suites.seed-tools.accuracy is NaN" in e.get("message", "")], what="Event")
        assert events[0]["type"] == "Warning"
        assert all(math.isfinite(n) for n in numbers(st)), "only finite numbers in the status"
        json.dumps(st, allow_nan=False)
        assert st["evaluations"] == [{"revision": first, "suitesDigest": st["evaluations"][0]["suitesDigest"],
                                      "complete": True, "suites": {"seed-tools": {"accuracy": 0.6,
                                                                                  "falseCallRate": 0.0,
                                                                                  "categories": {}}}}]
        assert cluster.get("v1", "services", NS, "nan")["spec"]["selector"][resources.LABEL_REVISION] == first


def test_a_failed_evaluation_rejects(cluster: EmulatedCluster, store: dict) -> None:
    with OperatorThread(cluster.url):
        first, second = to_candidate(cluster, store, "broken")
        evals = gate_jobs(cluster, "broken")
        finish(cluster, evals[second], succeeded=False)
        wait_for(lambda: (status(cluster, "broken").get("history") or [{}])[-1].get("reason") == "EvaluationFailed",
                 what="EvaluationFailed")
        assert status(cluster, "broken")["model"]["revision"] == first


def test_a_candidate_never_ready_is_rejected_on_timeout(cluster: EmulatedCluster, store: dict) -> None:
    with OperatorThread(cluster.url):
        cluster.create(gated("slow", store, model(store, "slow-1"), timeout=10))
        first = rollout(cluster, "slow")
        wait_for(lambda: status(cluster, "slow").get("model", {}).get("revision") == first, what="serving")
        cluster.patch(api.API_VERSION, api.PLURAL, NS, "slow", {"spec": {"model": {"uri": model(store, "slow-2")}}})
        wait_for(lambda: len(deployments(cluster, "slow")) == 2, what="candidate created")
        wait_for(lambda: (status(cluster, "slow").get("history") or [{}])[-1].get("reason") == "CandidateNotReady",
                 timeout=40, what="CandidateNotReady")
        assert list(deployments(cluster, "slow")) == [first]


def test_a_restart_mid_promotion_resumes_it_and_deletion_mid_promotion_removes_both(cluster: EmulatedCluster,
                                                                                     store: dict) -> None:
    with OperatorThread(cluster.url):
        first, second = to_candidate(cluster, store, "resume")
        evals = gate_jobs(cluster, "resume")
    with OperatorThread(cluster.url):
        report(store, "resume", first, 0.3)
        report(store, "resume", second, 0.5)
        for job in evals.values():
            finish(cluster, job)
        wait_for(lambda: status(cluster, "resume").get("model", {}).get("revision") == second, what="promoted")
        assert len([j for j in jobs(cluster, "resume") if "-gate-" in j]) == 2, "no second evaluation"
        cluster.patch(api.API_VERSION, api.PLURAL, NS, "resume", {"spec": {"model": {"uri": model(store, "resume-3")}}})
        wait_for(lambda: len(deployments(cluster, "resume")) == 2, what="a third revision beside the second")
        cluster.delete(api.API_VERSION, api.PLURAL, NS, "resume")
        wait_for(lambda: not serve(cluster, "resume"), what="deleted")
    assert deployments(cluster, "resume") == {} and jobs(cluster, "resume") == {}


# ---------------------------------------------------------------- what the store holds is untrusted

def test_a_model_marker_over_its_cap_makes_the_model_unusable_unread(cluster: EmulatedCluster, store: dict) -> None:
    uri = f"s3://{store['bucket']}/models/huge"
    location(uri).child("config.json").write_text("{}")
    size = COMPLETE_MARKER_MAX_BYTES + 1
    location(join(uri, COMPLETE_MARKER)).write_bytes(padded({"config.json": {"size": 2, "sha256": "0" * 64}}, size))
    with OperatorThread(cluster.url):
        cluster.create(manifest("huge", store, {"uri": uri}))
        cond = wait_for(lambda: condition(cluster, "huge", "Ready").get("reason") == "ModelUnusable"
                        and condition(cluster, "huge", "Ready"), what="ModelUnusable")
    assert f"is unusable, too large ({size} bytes > {COMPLETE_MARKER_MAX_BYTES})" in cond["message"]
    assert cond["message"].startswith(f"spec.model.uri: {uri} cannot be served")
    assert deployments(cluster, "huge") == {}


BENCH = {"complete": True, "endpoint": "http://x/v1", "model": "m", "max_tokens": 8, "levels": [
    {"concurrency": 1, "completed": 4, "failed": 0, "duration_s": 2.0, "request_throughput": 2.0,
     "output_tokens": 32, "output_throughput": 16.0}]}


@pytest.mark.parametrize("bench_json", [
    json.dumps(BENCH).replace("16.0", "NaN").encode(),
    json.dumps(BENCH).replace("16.0", "Infinity").encode(),
    padded(BENCH, records.BenchReport.max_bytes + 1),
], ids=["NaN", "Infinity", "over-cap"])
def test_a_bench_json_that_is_not_a_bench_report_puts_no_figure_in_the_status(cluster: EmulatedCluster, store: dict,
                                                                            bench_json: bytes) -> None:
    """A NaN would make the status not JSON (an API server refuses the whole write); over the cap, the file is
    not even parsed."""
    with OperatorThread(cluster.url):
        cluster.create(manifest("benched", store, {"uri": model(store, "benched")}, benchmark={"enabled": True}))
        rev = rollout(cluster, "benched")
        job = wait_for(lambda: jobs(cluster, "benched").get(resources.bench_job_name("benched", rev)),
                       what="the bench Job")
        layout = ServeLayout.of(f"s3://{store['bucket']}", NS, "benched")
        location(layout.bench_file(rev)).write_bytes(bench_json)
        finish(cluster, job["metadata"]["name"])
        bench = wait_for(lambda: (status(cluster, "benched").get("benchmark") or {}).get("revision") == rev
                         and status(cluster, "benched")["benchmark"], what="the benchmark's status")
    assert not bench.get("outputTokensPerSecond") and not status(cluster, "benched").get("tokensPerSecond")
    json.dumps(status(cluster, "benched"), allow_nan=False)  # JSON an API server accepts


def test_a_candidate_report_over_its_cap_is_not_read_and_rejects(cluster: EmulatedCluster, store: dict) -> None:
    """Its figures would promote it (0.9 against 0.3): over the cap they are not read at all."""
    with OperatorThread(cluster.url):
        first, second = to_candidate(cluster, store, "bulky", minMargin=0.05)
        evals = gate_jobs(cluster, "bulky")
        report(store, "bulky", first, 0.30)
        layout = ServeLayout.of(f"s3://{store['bucket']}", NS, "bulky")
        good = {"complete": True, "suites": {"seed-tools": {"accuracy": 0.9, "false_call_rate": 0.0}}}
        location(layout.report(second)).write_bytes(padded(good, records.ReportSummary.max_bytes + 1))
        for job in evals.values():
            finish(cluster, job)
        entry = wait_for(lambda: (status(cluster, "bulky").get("history") or [{}])[-1].get("decision") == "Rejected"
                         and status(cluster, "bulky")["history"][-1], what="rejection")
        assert entry["reason"] == "EvaluationFailed" and second in entry["message"]
        assert f"is unusable, too large ({records.ReportSummary.max_bytes + 1} bytes > " in entry["message"]
        assert status(cluster, "bulky")["model"]["revision"] == first


def bench_json(store: dict, serve_name: str, rev: str, ttft: float, throughput: float) -> None:
    """What the benchmark Job writes."""
    layout = ServeLayout.of(f"s3://{store['bucket']}", NS, serve_name)
    level = {"completed": 16, "failed": 0, "duration_s": 3.0, "request_throughput": 5.0, "output_tokens": 1024}
    location(layout.bench_file(rev)).write_text(json.dumps({
        "complete": True, "endpoint": "e", "model": serve_name, "max_tokens": 64, "levels": [
            {**level, "concurrency": 1, "output_throughput": throughput / 4, "ttft_p95_s": ttft / 4},
            {**level, "concurrency": 8, "output_throughput": throughput, "ttft_p95_s": ttft}]}))


def test_serving_objectives_benchmark_the_candidate_and_reject_a_slow_one_before_traffic_moves(
        cluster: EmulatedCluster, store: dict) -> None:
    body = manifest("slowtok", store, {"uri": model(store, "slowtok-1")}, benchmark={"concurrency": [1, 8]},
                    promotion={"enabled": True, "suites": [{"name": "seed-tools"}], "gate": {
                        "maxTTFTp95Ms": 500, "minThroughputRatio": 0.9, "benchmarkConcurrency": 8}})
    with OperatorThread(cluster.url):
        cluster.create(body)
        first = rollout(cluster, "slowtok")
        bench_first = resources.bench_job_name("slowtok", first)
        wait_for(lambda: bench_first in jobs(cluster, "slowtok"), what="the serving revision's benchmark")
        bench_json(store, "slowtok", first, 0.2, 100.0)
        finish(cluster, bench_first)
        wait_for(lambda: (status(cluster, "slowtok").get("benchmark") or {}).get("revision") == first, what="bench")
        cluster.patch(api.API_VERSION, api.PLURAL, NS, "slowtok", {"spec": {"model": {"uri": model(store, "slowtok-2")}}})
        second = rollout(cluster, "slowtok", exclude={first})
        evals = gate_jobs(cluster, "slowtok")
        report(store, "slowtok", first, 0.5)
        report(store, "slowtok", second, 0.7)
        for job in evals.values():
            finish(cluster, job)
        # The evaluation passed; the candidate is benchmarked (at full strength: one replica here) first.
        bench_second = resources.bench_job_name("slowtok", second)
        wait_for(lambda: bench_second in jobs(cluster, "slowtok"), what="the candidate's benchmark")
        wait_for(lambda: condition(cluster, "slowtok", "Progressing").get("reason") == "Benchmarking",
                 what="Benchmarking")
        assert status(cluster, "slowtok")["model"]["revision"] == first
        bench_json(store, "slowtok", second, 0.9, 60.0)
        finish(cluster, bench_second)
        entry = wait_for(lambda: (status(cluster, "slowtok").get("history") or [{}])[-1].get("decision") == "Rejected"
                         and status(cluster, "slowtok")["history"][-1], what="rejection")
        assert entry["revision"] == second and entry["reason"] == "PromotionRejected"
        assert "maxTTFTp95Ms: the candidate's TTFT p95 at concurrency 8 is 900 ms > 500" in entry["message"]
        assert "minThroughputRatio" in entry["message"]
        wait_for(lambda: second not in deployments(cluster, "slowtok"), what="candidate removed")
        assert cluster.get("v1", "services", NS, "slowtok")["spec"]["selector"][resources.LABEL_REVISION] == first
        assert status(cluster, "slowtok")["benchmark"]["revision"] == first


# ---------------------------------------------------------------- after a promotion: the watch

WATCH_SECONDS = 20  # two probe rounds at the shortest interval


def probe_round(store: dict, serve_name: str, rev: str, accuracy: float, unparseable: float = 0.0) -> None:
    """What the probe Deployment's `kubetune-job probe` writes after a round."""
    from datetime import UTC, datetime

    layout = ServeLayout.of(f"s3://{store['bucket']}", NS, serve_name)
    health = records.ProbeHealth(items=10, answered=10, accuracy=accuracy, failed=0.0, unparseable=unparseable)
    location(layout.probe_file(rev)).write_text(json.dumps(records.ProbeReport(
        created=datetime.now(UTC).isoformat(timespec="seconds"), model=serve_name, revision=rev, rounds=1,
        health=health).dump()))


def probe_args(cluster: EmulatedCluster, name: str) -> list[str]:
    dep = cluster.get("apps/v1", "deployments", NS, resources.probe_name(name)) or {}
    return ((dep.get("spec") or {}).get("template", {}).get("spec", {}).get("containers") or [{}])[0].get("args", [])


def watched(cluster: EmulatedCluster, store: dict, name: str) -> tuple[str, str]:
    """A ModelServe under watch, its model changed and the new revision promoted: (previous, promoted)."""
    cluster.create(manifest(name, store, {"uri": model(store, f"{name}-1")},
                            promotion={"watchSeconds": WATCH_SECONDS, "keepPrevious": 1},
                            monitoring={"probe": {"enabled": True, "intervalSeconds": 10, "minAccuracy": 0.5}}))
    first = rollout(cluster, name)
    wait_for(lambda: status(cluster, name).get("model", {}).get("revision") == first, what="serving")
    cluster.patch(api.API_VERSION, api.PLURAL, NS, name, {"spec": {"model": {"uri": model(store, f"{name}-2")}}})
    second = rollout(cluster, name, exclude={first})
    wait_for(lambda: (status(cluster, name).get("watch") or {}).get("revision") == second, what="the watch")
    return first, second


def test_a_failing_probe_inside_the_watch_rolls_back(cluster: EmulatedCluster, store: dict) -> None:
    with OperatorThread(cluster.url):
        first, second = watched(cluster, store, "watched")
        assert first in deployments(cluster, "watched"), "the previous revision stays up during the watch"
        assert deployments(cluster, "watched")[first]["spec"]["replicas"] == 1
        wait_for(lambda: "--revision" in probe_args(cluster, "watched"), what="the probe Deployment")
        args = probe_args(cluster, "watched")
        assert args[args.index("--revision") + 1] == second
        probe_round(store, "watched", second, accuracy=0.1, unparseable=0.9)
        wait_for(lambda: status(cluster, "watched")["model"]["revision"] == first, what="rolled back")
        st = status(cluster, "watched")
        assert st["history"][-1]["decision"] == "RolledBack" and st["history"][-1]["reason"] == "ProbeFailed"
        assert "maxUnparseableRate" in st["history"][-1]["message"] and second in st["rejected"]
        assert "watch" not in st or st["watch"] is None
        assert cluster.get("v1", "services", NS, "watched")["spec"]["selector"][resources.LABEL_REVISION] == first
        wait_for(lambda: second not in deployments(cluster, "watched"), what="the bad revision removed")
        events = [e for e in cluster.list("v1", "events", NS) if e.get("involvedObject", {}).get("name") == "watched"]
        assert any(e.get("reason") == "ProbeFailed" and e.get("type") == "Warning" for e in events)
        wait_for(lambda: probe_args(cluster, "watched")[probe_args(cluster, "watched").index("--revision") + 1] == first,
                 what="the probe follows the serving revision")


def test_a_failing_probe_after_the_watch_moves_nothing(cluster: EmulatedCluster, store: dict) -> None:
    import time

    with OperatorThread(cluster.url):
        first, second = watched(cluster, store, "steady")
        probe_round(store, "steady", second, accuracy=0.9)
        wait_for(lambda: (status(cluster, "steady").get("probe") or {}).get("accuracy") == 0.9, what="the probe's figures")
        wait_for(lambda: status(cluster, "steady").get("watch") is None, timeout=WATCH_SECONDS + 60, what="the watch ends")
        wait_for(lambda: first not in deployments(cluster, "steady"), what="the previous revision removed")
        probe_round(store, "steady", second, accuracy=0.0, unparseable=1.0)
        wait_for(lambda: (status(cluster, "steady").get("probe") or {}).get("unparseable") == 1.0, what="the failure seen")
        time.sleep(1.0)  # a few resync periods
        st = status(cluster, "steady")
        assert st["model"]["revision"] == second and [h["decision"] for h in st["history"]] == ["RolledOut", "RolledOut"]


# ---------------------------------------------------------------- spec.adapters: two replicas, then three

def adapter(store: dict, name: str, rank: int = 8) -> tuple[str, str]:
    """A complete adapter directory in the store (what a train job publishes), and its digest."""
    uri = f"s3://{store['bucket']}/adapters/{name}"
    config = json.dumps({"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank}).encode()
    location(uri).child("adapter_config.json").write_bytes(config)
    marker = json.dumps({"adapter_config.json": {"size": len(config), "sha256": "0" * 64}}).encode()
    location(join(uri, COMPLETE_MARKER)).write_bytes(marker)
    return uri, marker_digest(marker)


def replica(cluster: EmulatedCluster, serve_name: str, revision: str, pod: str) -> None:
    """What the ReplicaSet controller and the kubelet do: a pod of the revision, Ready."""
    labels = {resources.LABEL_SERVE: serve_name, resources.LABEL_REVISION: revision}
    cluster.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": NS, "labels": labels},
                    "spec": {"containers": [{"name": "vllm", "image": "vllm"}]}}, plural="pods")
    cluster.patch("v1", "pods", NS, pod, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                  subresource="status")


def agent_reports(store: dict, serve_name: str, pod: str, **states: tuple[str, str | None]) -> None:
    """What a replica's adapter agent writes after a pass: name -> (digest, failure reason or None)."""
    layout = ServeLayout.of(f"s3://{store['bucket']}", NS, serve_name)
    report = records.ReplicaAdapters(created="2026-12-08T00:00:00+00:00", replica=pod, adapters=[
        records.AdapterState(name=n, digest=d, state=records.FAILED if why else records.LOADED, reason=why)
        for n, (d, why) in states.items()])
    location(layout.adapter_replica(pod)).write_json(report.dump())


def adapter_states(cluster: EmulatedCluster, name: str) -> dict[str, dict]:
    return {a["name"]: a for a in status(cluster, name).get("adapters") or []}


def the_set(cluster: EmulatedCluster, name: str) -> dict[str, str]:
    cm = cluster.get("v1", "configmaps", NS, resources.adapters_name(name)) or {}
    found = records.read(records.AdapterSet, (cm.get("data") or {}).get("adapters.json"))
    return {w.name: w.digest for w in found.adapters} if found else {}


def test_adapters_reach_every_replica_a_failure_on_one_is_retried_and_surfaced(cluster: EmulatedCluster,
                                                                                store: dict) -> None:
    billing, d_billing = adapter(store, "billing")
    support, d_support = adapter(store, "support")
    other_base = {"apiVersion": ftr_api.API_VERSION, "kind": ftr_api.KIND, "metadata": {"name": "ft7", "namespace": NS},
                  "spec": {"baseModel": "Qwen/Qwen2.5-7B", "stages": [{"name": "tools", "dataset": {
                      "source": "x", "format": "xlam", "noCallSource": "y"}}]}}
    body = manifest("assistant", store, {"hub": "Qwen/Qwen2.5-3B"}, replicas=2,
                    adapters=[{"name": "billing", "uri": billing}, {"name": "support", "uri": support}])
    with OperatorThread(cluster.url):
        cluster.create(body)
        rev = rollout(cluster, "assistant")
        dep = deployments(cluster, "assistant")[rev]
        pod = dep["spec"]["template"]["spec"]
        # Every replica of the revision, those that start later included, runs the agent on the set's ConfigMap.
        assert [c["name"] for c in pod["containers"]] == ["vllm", "adapters"]
        assert {"name": "adapter-set", "configMap": {"name": "assistant-adapters", "optional": True}} in pod["volumes"]
        wait_for(lambda: the_set(cluster, "assistant") == {"billing": d_billing, "support": d_support}, what="the set")
        replica(cluster, "assistant", rev, "assistant-a")
        replica(cluster, "assistant", rev, "assistant-b")
        wait_for(lambda: set(adapter_states(cluster, "assistant")) == {"billing", "support"}, what="adapter states")
        assert {a["state"] for a in adapter_states(cluster, "assistant").values()} == {"Loading"}

        agent_reports(store, "assistant", "assistant-a", billing=(d_billing, None), support=(d_support, None))
        agent_reports(store, "assistant", "assistant-b", billing=(d_billing, None),
                      support=(d_support, "the server refused it: HTTP 400: no free LoRA slot"))
        wait_for(lambda: adapter_states(cluster, "assistant")["support"]["state"] == "Failed", what="a failed load")
        st = adapter_states(cluster, "assistant")
        assert st["billing"]["state"] == "Ready" and st["billing"]["replicas"] == ["assistant-a", "assistant-b"]
        assert "assistant-b: the server refused it: HTTP 400: no free LoRA slot" in st["support"]["message"]
        assert st["support"]["replicas"] == ["assistant-a"] and status(cluster, "assistant")["adaptersReady"] == "1/2"
        assert condition(cluster, "assistant", "Ready")["status"] == "True"  # the base and billing still serve

        # The agent retries every pass; its next report clears the failure.
        agent_reports(store, "assistant", "assistant-b", billing=(d_billing, None), support=(d_support, None))
        wait_for(lambda: status(cluster, "assistant").get("adaptersReady") == "2/2", what="both Ready")

        # A replica added later (scale-up): not counted Ready for an adapter until it reports it.
        cluster.patch(api.API_VERSION, api.PLURAL, NS, "assistant", {"spec": {"replicas": 3}})
        wait_for(lambda: deployments(cluster, "assistant")[rev]["spec"]["replicas"] == 3, what="scaled")
        make_ready(cluster, deployments(cluster, "assistant")[rev])
        replica(cluster, "assistant", rev, "assistant-c")
        wait_for(lambda: status(cluster, "assistant").get("adaptersReady") == "0/2", what="the new replica loading")
        agent_reports(store, "assistant", "assistant-c", billing=(d_billing, None), support=(d_support, None))
        wait_for(lambda: status(cluster, "assistant").get("adaptersReady") == "2/2", what="on all three")
        assert adapter_states(cluster, "assistant")["billing"]["replicas"] == ["assistant-a", "assistant-b",
                                                                               "assistant-c"]

        # Removing one and adding one trained on another base: the set changes in place (no new revision), the
        # mismatched one is refused with its field, the others keep serving.
        cluster.create(other_base)  # the operator runs it; once it has, the run "finishes"
        wait_for(lambda: (cluster.get(ftr_api.API_VERSION, ftr_api.PLURAL, NS, "ft7") or {}).get("status"),
                 what="the run started")
        cluster.patch(ftr_api.API_VERSION, ftr_api.PLURAL, NS, "ft7", {"status": {
            "phase": "Succeeded", "observedGeneration": 1,
            "artifacts": {"adapters": {"tools": f"s3://{store['bucket']}/ft7/adapter"}}}}, subresource="status")
        cluster.patch(api.API_VERSION, api.PLURAL, NS, "assistant", {"spec": {"adapters": [
            {"name": "support", "uri": support}, {"name": "seven", "fineTuneRun": {"name": "ft7"}}]}})
        wait_for(lambda: the_set(cluster, "assistant") == {"support": d_support}, what="billing out of the set")
        wait_for(lambda: "seven" in adapter_states(cluster, "assistant"), what="the new adapter's state")
        seven = adapter_states(cluster, "assistant")["seven"]
        assert seven["state"] == "Failed" and seven["message"].startswith("spec.adapters[1]: FineTuneRun 'ft7'")
        assert "Qwen/Qwen2.5-7B" in seven["message"] and adapter_states(cluster, "assistant")["support"]["state"] == "Ready"
        assert list(deployments(cluster, "assistant")) == [rev]
        # Each adapter's readiness on the operator's /metrics; a removed adapter's series go with it.
        labels = {"namespace": NS, "modelserve": "assistant"}
        assert REGISTRY.get_sample_value(m.SERVE_ADAPTER_READY.name, {**labels, "adapter": "support"}) == 1
        assert REGISTRY.get_sample_value(m.SERVE_ADAPTER_REPLICAS.name, {**labels, "adapter": "support"}) == 3
        assert REGISTRY.get_sample_value(m.SERVE_ADAPTER_READY.name, {**labels, "adapter": "seven"}) == 0
        assert REGISTRY.get_sample_value(m.SERVE_ADAPTER_READY.name, {**labels, "adapter": "billing"}) is None
