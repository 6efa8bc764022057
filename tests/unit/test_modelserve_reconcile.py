"""The ModelServe decision without kopf: waiting for a run, the first rollout, a model change (with and
without the gate), promotion, rejection on score / timeout / failed evaluation, a rejected revision not
retried, the benchmark, problems that keep the serving revision, restarts (the decision only reads status)."""

from __future__ import annotations

from dataclasses import replace

from test_modelserve_resources import BUILD, RUN, spec, target

from kubetune_jobs.contract import records
from kubetune_operator.kube.conditions import condition
from kubetune_operator.kube.jobs import FAILED, RUNNING, SUCCEEDED, JobView
from kubetune_operator.modelserve import api, reconcile, resources, source
from kubetune_operator.modelserve.reconcile import Decision, DeploymentView, Observed
from kubetune_operator.modelserve.source import Target, Unavailable, Waiting
from support.crd_status import assert_written_whole

T0 = "2026-12-01T10:00:00Z"


def at(minutes: float) -> str:
    m = int(minutes)
    return f"2026-12-01T{10 + m // 60:02d}:{m % 60:02d}:{int((minutes - m) * 60):02d}Z"


def obs(s=None, t: Target | Waiting | Unavailable | None = None, status=None, now=T0, **fields) -> Observed:
    s = s or spec()
    res = t if t is not None else target(s)
    desired = source.revision(s, res, BUILD.served_name, BUILD.vllm_image) if isinstance(res, Target) else None
    return Observed(name="assistant", namespace="ml", generation=1, status=status or {}, now=now, build=BUILD,
                    spec=s, resolution=res, desired=desired, **fields)


def decide(o: Observed) -> Decision:
    """The decision, its status checked as the API server checks the write (accepted whole, nothing pruned)."""
    d = reconcile.decide(o)
    assert_written_whole(api.RESOURCE, d.status)
    return d


def cond(d, type_: str) -> dict:
    return condition(d.status["conditions"], type_) or {}


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
    assert cond(d, "Ready")["reason"] == "RollingOut" and d.status["candidate"]["revision"] == rev
    d = decide(obs(status=d.status, deployments=ready(rev)))
    assert d.status["model"]["revision"] == rev and d.status["model"]["digest"] == target(spec()).digest
    assert cond(d, "Ready")["status"] == "True" and d.status["endpoint"].startswith("http://assistant.ml.svc")
    assert ("Service", "assistant") in kinds(d.apply)
    stable = next(m for m in d.apply if m["metadata"]["name"] == "assistant")
    assert stable["spec"]["selector"][resources.LABEL_REVISION] == rev
    assert [h["decision"] for h in d.status["history"]] == ["RolledOut"]
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
    d = decide(obs(status=status, deployments=ready(rev), jobs=job, bench={rev: bench}))
    assert d.status["benchmark"]["outputTokensPerSecond"] == {"1": 102.4, "8": 341.3}
    assert d.status["tokensPerSecond"] == 341.3 and d.status["benchmark"]["ttftP95Seconds"]["8"] == 0.2
    again = decide(obs(status=d.status, deployments=ready(rev), jobs=job, bench={rev: bench}))
    assert not any(m["kind"] == "Job" for m in again.apply), "a revision is benchmarked once"


def test_a_benchmark_figure_that_is_not_a_number_stays_out_of_the_status() -> None:
    """bench.json comes from the store: a NaN or an Infinity in it must not make the status unwritable (an
    API server refuses a status holding one, whole, and would refuse every later write of it the same way)."""
    status, rev = serving()
    bench = records.BenchReport(complete=True, endpoint="e", model="assistant", max_tokens=64, levels=[
        records.BenchLevel(concurrency=1, completed=16, failed=0, duration_s=10, request_throughput=1.6,
                           output_tokens=1024, output_throughput=float("inf"), ttft_p95_s=float("nan")),
        records.BenchLevel(concurrency=8, completed=16, failed=0, duration_s=3, request_throughput=5.3,
                           output_tokens=1024, output_throughput=341.3, ttft_p95_s=0.2)])
    job = {resources.bench_job_name("assistant", rev): JobView("b", SUCCEEDED)}
    d = decide(obs(status=status, deployments=ready(rev), jobs=job, bench={rev: bench}))
    assert d.status["benchmark"]["outputTokensPerSecond"] == {"8": 341.3}
    assert d.status["benchmark"]["ttftP95Seconds"] == {"8": 0.2} and d.status["tokensPerSecond"] == 341.3


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
    assert ("Deployment", f"assistant-{new}") in kinds(d.apply) and d.status["model"]["revision"] == old
    assert cond(d, "Ready")["status"] == "True", "the old revision serves while the new one rolls out"
    d = decide(replace(o, status=d.status, deployments={**ready(old), **ready(new)}))
    assert d.status["model"]["revision"] == new
    assert ("apps/v1", "Deployment", f"assistant-{old}") in d.delete
    assert [h["decision"] for h in d.status["history"]] == ["RolledOut", "RolledOut"]


def gated(replicas: int = 1, **gate):  # a spec with promotion on
    return spec(replicas=replicas, promotion={"enabled": True, "suites": [{"name": "seed-tools"}], "gate": gate,
                                              "readinessTimeoutSeconds": 600})


def report(acc: float, false_call: float = 0.0) -> records.ReportSummary:
    return records.ReportSummary(complete=True, suites={"seed-tools": records.Suite(accuracy=acc,
                                                                                    false_call_rate=false_call)})


def evaluated(s, old: str, new: str, o: Observed, cand: float, cur: float, state: str = SUCCEEDED):
    d = decide(o)
    d = decide(replace(o, status=d.status, deployments={**ready(old), **ready(new)}))
    assert d.status["candidate"]["phase"] == "Evaluating"
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
    assert d.status["candidate"]["phase"] == "ScalingUp" and d.status["model"]["revision"] == old
    dep = next(m for m in d.apply if m["metadata"]["name"] == f"assistant-{new}" and m["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 2
    d = decide(replace(o, status=d.status, deployments={**ready(old, 2, 2), **ready(new, 2, 2)}))
    assert d.status["model"]["revision"] == new and d.status["candidate"] is None
    promo = d.status["history"][-1]
    assert promo["decision"] == "Promoted" and "0.450 vs 0.300" in promo["message"]
    assert ("apps/v1", "Deployment", f"assistant-{old}") in d.delete
    assert any(e.reason == "Promoted" for e in d.events)


def test_a_worse_candidate_is_rejected_with_the_figures_and_not_tried_again() -> None:
    s = gated(minMargin=0.0)
    o, old, new = changed(s)
    d = evaluated(s, old, new, o, cand=0.20, cur=0.30)
    assert d.status["model"]["revision"] == old and d.status["candidate"] is None
    rej = d.status["history"][-1]
    assert rej["decision"] == "Rejected" and rej["reason"] == "PromotionRejected"
    assert "minMargin" in rej["message"] and "0.200 vs 0.300" in rej["message"]
    assert ("apps/v1", "Deployment", f"assistant-{new}") in d.delete
    assert cond(d, "Progressing")["reason"] == "PromotionRejected" and cond(d, "Ready")["status"] == "True"
    again = decide(replace(o, status=d.status, deployments={**ready(old), **ready(new)}))
    assert not any(m["metadata"]["name"] == f"assistant-{new}" for m in again.apply), "a rejected revision waits"
    assert ("apps/v1", "Deployment", f"assistant-{new}") in again.delete


def test_a_failed_evaluation_rejects_the_candidate() -> None:
    s = gated()
    o, old, new = changed(s)
    d = evaluated(s, old, new, o, cand=0.9, cur=0.1, state=FAILED)
    assert d.status["history"][-1]["reason"] == "EvaluationFailed" and d.status["model"]["revision"] == old


def test_a_candidate_never_ready_is_rejected_after_the_timeout() -> None:
    s = gated()
    o, old, new = changed(s)
    d = decide(o)
    d = decide(replace(o, status=d.status, now=at(5)))
    assert d.status["candidate"]["revision"] == new, "still within the readiness timeout"
    d = decide(replace(o, status=d.status, now=at(11)))
    assert d.status["history"][-1]["reason"] == "CandidateNotReady" and d.status["model"]["revision"] == old


def test_recorded_scores_of_the_serving_revision_are_reused() -> None:
    s = gated()
    o, old, new = changed(s)
    status = {**o.status, "evaluations": {old: {"seed-tools": 0.3}},
              "evaluatedSuites": {old: resources.suites_digest(s.promotion)}}
    o = replace(o, status=status)
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
    assert d.status["candidate"]["started"] == first["candidate"]["started"]
    assert not any(m["kind"] == "Job" for m in d.apply)
    assert cond(d, "Progressing")["reason"] == "Evaluating"


def test_a_problem_keeps_the_serving_revision_serving() -> None:
    status, rev = serving()
    d = decide(replace(obs(status=status, deployments=ready(rev)), problems=["spec.vllm.toolCallParser: unknown"]))
    assert d.delete == [] and cond(d, "Ready")["status"] == "True" and cond(d, "Degraded")["status"] == "True"
    assert RUN["status"]["phase"] == "Succeeded"
