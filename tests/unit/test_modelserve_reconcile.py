"""The ModelServe decision without kopf: waiting for a run, the first rollout, a model change (with and
without the gate), promotion, rejection on score / timeout / failed evaluation, a rejected revision not
retried, the benchmark, problems that keep the serving revision, restarts (the decision only reads status)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from test_modelserve_resources import BUILD, RUN, spec, target

from kubetune_jobs.contract import records
from kubetune_operator.kube.conditions import condition
from kubetune_operator.kube.jobs import FAILED, RUNNING, SUCCEEDED, JobView
from kubetune_operator.modelserve import api, resources, source
from kubetune_operator.modelserve.api import Evaluation, ModelServeStatus, SuiteFigures
from kubetune_operator.modelserve.reconcile import DeploymentView, Observed
from kubetune_operator.modelserve.reconcile import decide as _decide
from kubetune_operator.modelserve.source import Target, Unavailable, Waiting
from support import apiserver
from support.crd_status import assert_written_whole, written_status

T0 = "2026-12-01T10:00:00Z"
def admitted(status: ModelServeStatus) -> dict:
    """The status as the handler writes it, checked as an API server checks the write (`support.crd_status`):
    JSON (no NaN, no infinity), valid against the CRD's schema and rules, nothing of it pruned."""
    body = status.wire()
    assert_written_whole(api.RESOURCE, body)
    return body


def decide(o: Observed):
    """Every decision of every test here: its status must be one an API server accepts."""
    d = _decide(o)
    admitted(d.status)
    return d


def at(minutes: float) -> str:
    m = int(minutes)
    return f"2026-12-01T{10 + m // 60:02d}:{m % 60:02d}:{int((minutes - m) * 60):02d}Z"


def obs(s=None, t: Target | Waiting | Unavailable | None = None, status=None, now=T0, **fields) -> Observed:
    s = s or spec()
    res = t if t is not None else target(s)
    desired = source.revision(s, res, BUILD.served_name, BUILD.vllm_image) if isinstance(res, Target) else None
    return Observed(name="assistant", namespace="ml", generation=1, status=status or ModelServeStatus(), now=now,
                    build=BUILD,
                    spec=s, resolution=res, desired=desired, **fields)


def cond(d, type_: str) -> dict:
    return condition([c.wire() for c in d.status.conditions], type_) or {}


def kinds(manifests) -> list[tuple[str, str]]:
    return sorted((m["kind"], m["metadata"]["name"]) for m in manifests)


def ready(revision: str, n: int = 1, replicas: int = 1) -> dict[str, DeploymentView]:
    return {revision: DeploymentView(resources.deployment_name("assistant", revision), revision, replicas, n)}


def test_waiting_for_a_run_is_a_state_and_creates_nothing() -> None:
    d = decide(obs(t=Waiting("WaitingForRun", "waiting for FineTuneRun 'ft' to succeed (now: train-tools)")))
    assert d.apply == [] and d.delete == []
    assert cond(d, "Ready")["status"] == "False" and cond(d, "Ready")["reason"] == "WaitingForRun"
    assert cond(d, "Progressing")["status"] == "True" and cond(d, "Degraded")["status"] == "False"


def test_an_unavailable_model_or_a_bad_spec_gets_a_condition_and_no_deployment() -> None:
    d = decide(obs(t=Unavailable("RunFailed", "spec.model.fineTuneRun.name: FineTuneRun 'ft' failed")))
    assert d.apply == [] and cond(d, "Degraded")["reason"] == "RunFailed"
    assert [e.reason for e in d.events] == ["RunFailed"]
    bad = replace(obs(), problems=["spec.apiKeySecret: Secret 'serve-key' not found in namespace 'ml'"],
                  problem_reason="SecretNotFound")
    d = decide(bad)
    assert d.apply == [] and cond(d, "Ready")["reason"] == "SecretNotFound"
    assert "spec.apiKeySecret" in cond(d, "Degraded")["message"]


def test_the_first_revision_rolls_out_and_serves_once_ready() -> None:
    o = obs()
    rev = o.desired
    d = decide(o)
    assert kinds(d.apply) == [("Deployment", f"assistant-{rev}"), ("Service", f"assistant-{rev}")]
    assert cond(d, "Ready")["reason"] == "RollingOut" and d.status.candidate.revision == rev
    d = decide(obs(status=d.status, deployments=ready(rev)))
    assert d.status.model.revision == rev and d.status.model.digest == target(spec()).digest
    assert cond(d, "Ready")["status"] == "True" and d.status.endpoint.startswith("http://assistant.ml.svc")
    assert ("Service", "assistant") in kinds(d.apply)
    stable = next(m for m in d.apply if m["metadata"]["name"] == "assistant")
    assert stable["spec"]["selector"][resources.LABEL_REVISION] == rev
    assert [h.decision for h in d.status.history] == ["RolledOut"]
    # ... and it is benchmarked once it serves
    assert ("Job", resources.bench_job_name("assistant", rev)) in kinds(d.apply)


def serving(s=None) -> tuple[dict, str]:
    s = s or spec()
    o = obs(s)
    d = decide(o)
    d = decide(obs(s, status=d.status, deployments=ready(o.desired)))
    return d.status, o.desired


def test_the_benchmark_reaches_the_status() -> None:
    status, rev = serving()
    bench = records.BenchReport(complete=True, endpoint="e", model="assistant", max_tokens=64, levels=[
        records.BenchLevel(concurrency=1, completed=16, failed=0, duration_s=10, request_throughput=1.6,
                           output_tokens=1024, output_throughput=102.4, ttft_p95_s=0.05),
        records.BenchLevel(concurrency=8, completed=16, failed=0, duration_s=3, request_throughput=5.3,
                           output_tokens=1024, output_throughput=341.3, ttft_p95_s=0.2)])
    job = {resources.bench_job_name("assistant", rev): JobView("b", SUCCEEDED)}
    raw = json.dumps(bench.dump()).encode()  # bench.json as the Job writes it
    d = decide(obs(status=status, deployments=ready(rev), jobs=job, bench={rev: raw}))
    assert d.status.benchmark.output_tokens_per_second == {"1": 102.4, "8": 341.3}
    assert d.status.tokens_per_second == 341.3 and d.status.benchmark.ttft_p95_seconds["8"] == 0.2
    again = decide(obs(status=d.status, deployments=ready(rev), jobs=job, bench={rev: raw}))
    assert not any(m["kind"] == "Job" for m in again.apply), "a revision is benchmarked once"


def changed(s=None) -> tuple[Observed, str, str]:
    """A serving revision and a model change (new content of the run's model)."""
    s = s or spec()
    status, old = serving(s)
    moved = Target(**{**target(s).__dict__, "digest": "f" * 64})
    o = obs(s, t=moved, status=status, deployments=ready(old))
    return o, old, o.desired


def test_without_the_gate_a_model_change_rolls_out_beside_and_replaces_the_old_revision() -> None:
    o, old, new = changed()
    d = decide(o)
    assert ("Deployment", f"assistant-{new}") in kinds(d.apply) and d.status.model.revision == old
    assert cond(d, "Ready")["status"] == "True", "the old revision serves while the new one rolls out"
    d = decide(replace(o, status=d.status, deployments={**ready(old), **ready(new)}))
    assert d.status.model.revision == new
    assert ("apps/v1", "Deployment", f"assistant-{old}") in d.delete
    assert [h.decision for h in d.status.history] == ["RolledOut", "RolledOut"]


def gated(replicas: int = 1, **gate):  # a spec with promotion on
    return spec(replicas=replicas, promotion={"enabled": True, "suites": [{"name": "seed-tools"}], "gate": gate,
                                              "readinessTimeoutSeconds": 600})


def report(acc: float, false_call: float = 0.0) -> bytes:
    """report.json as evaluate writes it (the figures the gate reads, and one it does not)."""
    return json.dumps({"complete": True, "suites": {"seed-tools": {
        "items": 8, "accuracy": acc, "false_call_rate": false_call, "perplexity": None}}}).encode()


def evaluated(s, old: str, new: str, o: Observed, cand: float, cur: float, state: str = SUCCEEDED):
    d = decide(o)
    d = decide(replace(o, status=d.status, deployments={**ready(old), **ready(new)}))
    assert d.status.candidate.phase == "Evaluating"
    names = {resources.gate_job_name("assistant", r, s.promotion) for r in (old, new)}
    assert names <= {m["metadata"]["name"] for m in d.apply if m["kind"] == "Job"}, "both revisions are evaluated"
    jobs = {n: JobView(n, state, "BackoffLimitExceeded" if state == FAILED else "") for n in names}
    return decide(replace(o, status=d.status, deployments={**ready(old), **ready(new)}, jobs=jobs,
                          reports={old: report(cur), new: report(cand)}))


def test_a_better_candidate_is_promoted_after_scaling_to_full_strength() -> None:
    s = gated(replicas=2, minAccuracy={"seed-tools": 0.3}, minMargin=0.05)
    o, old, new = changed(s)
    d = evaluated(s, old, new, o, cand=0.45, cur=0.30)
    # Evaluated on one replica; before it takes traffic it scales to the serving count (2).
    assert d.status.candidate.phase == "ScalingUp" and d.status.model.revision == old
    dep = next(m for m in d.apply if m["metadata"]["name"] == f"assistant-{new}" and m["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 2
    d = decide(replace(o, status=d.status, deployments={**ready(old, 2, 2), **ready(new, 2, 2)}))
    assert d.status.model.revision == new and d.status.candidate is None
    promo = d.status.history[-1]
    assert promo.decision == "Promoted" and "0.450 vs 0.300" in promo.message
    assert ("apps/v1", "Deployment", f"assistant-{old}") in d.delete
    assert any(e.reason == "Promoted" for e in d.events)


def test_a_worse_candidate_is_rejected_with_the_figures_and_not_tried_again() -> None:
    s = gated(minMargin=0.0)
    o, old, new = changed(s)
    d = evaluated(s, old, new, o, cand=0.20, cur=0.30)
    assert d.status.model.revision == old and d.status.candidate is None
    rej = d.status.history[-1]
    assert rej.decision == "Rejected" and rej.reason == "PromotionRejected"
    assert "minMargin" in rej.message and "0.200 vs 0.300" in rej.message
    assert ("apps/v1", "Deployment", f"assistant-{new}") in d.delete
    assert cond(d, "Progressing")["reason"] == "PromotionRejected" and cond(d, "Ready")["status"] == "True"
    again = decide(replace(o, status=d.status, deployments={**ready(old), **ready(new)}))
    assert not any(m["metadata"]["name"] == f"assistant-{new}" for m in again.apply), "a rejected revision waits"
    assert ("apps/v1", "Deployment", f"assistant-{new}") in again.delete


def test_a_failed_evaluation_rejects_the_candidate() -> None:
    s = gated()
    o, old, new = changed(s)
    d = evaluated(s, old, new, o, cand=0.9, cur=0.1, state=FAILED)
    assert d.status.history[-1].reason == "EvaluationFailed" and d.status.model.revision == old


def test_a_candidate_never_ready_is_rejected_after_the_timeout() -> None:
    s = gated()
    o, old, new = changed(s)
    d = decide(o)
    d = decide(replace(o, status=d.status, now=at(5)))
    assert d.status.candidate.revision == new, "still within the readiness timeout"
    d = decide(replace(o, status=d.status, now=at(11)))
    assert d.status.history[-1].reason == "CandidateNotReady" and d.status.model.revision == old


def test_recorded_scores_of_the_serving_revision_are_reused() -> None:
    s = gated()
    o, old, new = changed(s)
    recorded = Evaluation(revision=old, suites_digest=resources.suites_digest(s.promotion), complete=True,
                          suites={"seed-tools": SuiteFigures(accuracy=0.3)})
    o = replace(o, status=o.status.model_copy(update={"evaluations": [recorded]}))
    d = decide(replace(o, status=decide(o).status, deployments={**ready(old), **ready(new)}))
    jobs = [m["metadata"]["name"] for m in d.apply if m["kind"] == "Job"]
    assert resources.gate_job_name("assistant", new, s.promotion) in jobs
    assert resources.gate_job_name("assistant", old, s.promotion) not in jobs


def test_a_restarted_operator_resumes_the_same_promotion() -> None:
    s = gated()
    o, old, new = changed(s)
    first = decide(o).status
    running = {resources.gate_job_name("assistant", r, s.promotion): JobView("x", RUNNING) for r in (old, new)}
    # The decision reads only status and observed objects: a new operator sees the same candidate, adopts its
    # Jobs and creates no second one.
    d = decide(replace(o, status=first, deployments={**ready(old), **ready(new)}, jobs=running))
    assert d.status.candidate.started == first.candidate.started
    assert not any(m["kind"] == "Job" for m in d.apply)
    assert cond(d, "Progressing")["reason"] == "Evaluating"


def test_a_problem_keeps_the_serving_revision_serving() -> None:
    status, rev = serving()
    d = decide(replace(obs(status=status, deployments=ready(rev)), problems=["spec.vllm.toolCallParser: unknown"]))
    assert d.delete == [] and cond(d, "Ready")["status"] == "True" and cond(d, "Degraded")["status"] == "True"
    assert RUN["status"]["phase"] == "Succeeded"


def test_a_candidate_report_holding_nan_is_rejected_and_the_status_stays_finite() -> None:
    s = gated(minAccuracy={"seed-tools": 0.5}, minMargin=0.05, maxFalseCallRate=0.1)
    o, old, new = changed(s)
    d = decide(o)
    d = decide(replace(o, status=d.status, deployments={**ready(old), **ready(new)}))
    jobs = {resources.gate_job_name("assistant", r, s.promotion): JobView("x", SUCCEEDED) for r in (old, new)}
    d = decide(replace(o, status=d.status, deployments={**ready(old), **ready(new)}, jobs=jobs,
                       reports={old: report(0.6), new: report(math.nan)}))
    rej = d.status.history[-1]
    assert d.status.model.revision == old and rej.decision == "Rejected" and rej.revision == new
    assert "the candidate's report: suites.seed-tools.accuracy is NaN" in rej.message
    assert [(e.revision, e.suites["seed-tools"].accuracy) for e in d.status.evaluations] == [(old, 0.6)]


def test_a_serving_report_that_is_not_one_rejects_and_is_not_recorded() -> None:
    s = gated()
    o, old, new = changed(s)
    d = decide(o)
    d = decide(replace(o, status=d.status, deployments={**ready(old), **ready(new)}))
    jobs = {resources.gate_job_name("assistant", r, s.promotion): JobView("x", SUCCEEDED) for r in (old, new)}
    bench = json.dumps({"complete": True, "endpoint": "e", "model": "m", "max_tokens": 64, "levels": []}).encode()
    d = decide(replace(o, status=d.status, deployments={**ready(old), **ready(new)}, jobs=jobs,
                       reports={old: bench, new: report(0.9)}))
    rej = d.status.history[-1]
    assert rej.reason == "EvaluationFailed" and "the serving model's report: not a report: no `suites`" in rej.message
    assert d.status.evaluations == [], "only what the gate could use is recorded"


def test_the_schema_check_refuses_what_an_api_server_refuses() -> None:
    """The check every decision above passes is not vacuous: the old status shapes fail it."""
    status = ModelServeStatus()
    body = status.wire()
    for bad in ({"evaluations": {"r1": {"seed-tools": 0.3, "_suites": "ab12"}}},
                {"evaluations": [{"revision": "r1", "suitesDigest": "ab", "complete": True,
                                  "suites": {"seed-tools": {"accuracy": 1.5}}}]},
                {"tokensPerSecond": "fast"}):
        with pytest.raises(apiserver.Refused) as refused:
            written_status(api.RESOURCE, {**body, **bad})
        assert refused.value.code == 422
    with pytest.raises(apiserver.Refused) as refused:
        written_status(api.RESOURCE, {**body, "tokensPerSecond": math.nan})
    assert refused.value.code == 400


def test_a_status_an_older_operator_wrote_is_read_without_what_no_longer_validates() -> None:
    """The old `evaluations` map (a string digest among the numbers, possibly NaN) is dropped on read, so the
    serving revision is evaluated again; the rest of the status is kept."""
    status, rev = serving()
    old = {**status.wire(), "evaluations": {rev: {"seed-tools": math.nan, "_suites": "ab12"}}, "kopf": {"x": 1}}
    read = api.parse_status(old)
    assert read.evaluations == [] and read.model == status.model and read.history == status.history
    assert api.parse_status(None) == ModelServeStatus() and api.parse_status({"history": 5}).history == []


def bench_json(ttft: float, throughput: float) -> bytes:
    level = {"completed": 16, "failed": 0, "duration_s": 3.0, "request_throughput": 5.0, "output_tokens": 1024}
    return json.dumps({"complete": True, "endpoint": "e", "model": "assistant", "max_tokens": 64, "levels": [
        {**level, "concurrency": 1, "output_throughput": throughput / 4, "ttft_p95_s": ttft / 4},
        {**level, "concurrency": 8, "output_throughput": throughput, "ttft_p95_s": ttft}]}).encode()


def objectives_round(candidate_bench: bytes, serving_bench: bytes | None):
    """A candidate that passes the evaluation, scales to full strength and is benchmarked; the last decision."""
    s = gated(replicas=2, minMargin=0.05, maxTTFTp95Ms=500, minThroughputRatio=0.9, benchmarkConcurrency=8)
    o, old, new = changed(s)
    done = {resources.bench_job_name("assistant", old): JobView("b", SUCCEEDED)} if serving_bench else {}
    benches = {old: serving_bench} if serving_bench else {}
    gates = {resources.gate_job_name("assistant", r, s.promotion): JobView("g", SUCCEEDED) for r in (old, new)}
    both = {**ready(old, 2, 2), **ready(new)}
    d = decide(replace(o, deployments=both, jobs=done, bench=benches))
    d = decide(replace(o, status=d.status, deployments=both, jobs={**done, **gates}, bench=benches,
                       reports={old: report(0.6), new: report(0.7)}))
    assert d.status.candidate.phase == "ScalingUp", "the evaluation passed: to full strength"
    full = {**ready(old, 2, 2), **ready(new, 2, 2)}
    o = replace(o, deployments=full, jobs={**done, **gates}, bench=benches, reports={old: report(0.6),
                                                                                    new: report(0.7)})
    d = decide(replace(o, status=d.status))
    assert d.status.candidate.phase == "Benchmarking" and d.status.model.revision == old
    assert ("Job", resources.bench_job_name("assistant", new)) in kinds(d.apply), "benchmarked before traffic moves"
    assert cond(d, "Progressing")["reason"] == "Benchmarking"
    o = replace(o, jobs={**o.jobs, resources.bench_job_name("assistant", new): JobView("b", SUCCEEDED)},
                bench={**benches, new: candidate_bench})
    return decide(replace(o, status=d.status)), o, old, new


def test_serving_objectives_benchmark_the_candidate_at_full_strength_and_promote_it_once() -> None:
    d, o, old, new = objectives_round(bench_json(0.3, 95.0), bench_json(0.2, 100.0))
    assert d.status.model.revision == new and d.status.history[-1].decision == "Promoted"
    message = d.status.history[-1].message
    assert "TTFT p95 at concurrency 8 <= 500 ms: 300 ms vs – pass" in message
    assert "output tok/s at concurrency 8 >= 0.9 x serving: 95.0 vs 100.0 pass" in message
    # The benchmark it was promoted on is the serving revision's benchmark: not run a second time.
    assert d.status.benchmark.revision == new and d.status.benchmark.output_tokens_per_second["8"] == 95.0
    assert not any(m["kind"] == "Job" for m in d.apply)


def test_a_candidate_slower_than_the_objectives_is_rejected_before_traffic_moves() -> None:
    d, o, old, new = objectives_round(bench_json(0.9, 80.0), bench_json(0.2, 100.0))
    rej = d.status.history[-1]
    assert d.status.model.revision == old and rej.decision == "Rejected" and rej.reason == "PromotionRejected"
    assert "maxTTFTp95Ms: the candidate's TTFT p95 at concurrency 8 is 900 ms > 500" in rej.message
    assert "minThroughputRatio: the candidate's 80.0 output tok/s at concurrency 8 is 0.80 x" in rej.message
    assert ("apps/v1", "Deployment", f"assistant-{new}") in d.delete
    stable = next(m for m in d.apply if m["metadata"]["name"] == "assistant")
    assert stable["spec"]["selector"][resources.LABEL_REVISION] == old


def test_without_a_serving_benchmark_the_throughput_ratio_fails_closed() -> None:
    d, *_ = objectives_round(bench_json(0.3, 95.0), None)
    rej = d.status.history[-1]
    assert rej.decision == "Rejected" and "the serving model's benchmark: missing" in rej.message
