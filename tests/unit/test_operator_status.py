"""Pure status helpers: Kubernetes-convention conditions, Job states, progress/report parsing, gates."""

from __future__ import annotations

import json
from pathlib import Path

from kubetune_operator.finetunerun import api
from kubetune_operator.finetunerun import results as st
from kubetune_operator.kube import conditions, jobs


def test_last_transition_time_moves_only_when_status_flips() -> None:
    c = conditions.set_condition([], "Succeeded", "Unknown", "InProgress", "step a", 1, at="2026-01-01T00:00:00Z")
    c = conditions.set_condition(c, "Succeeded", "Unknown", "InProgress", "step b", 2, at="2026-01-01T00:05:00Z")
    cond = conditions.condition(c, "Succeeded")
    assert cond["lastTransitionTime"] == "2026-01-01T00:00:00Z" and cond["message"] == "step b"
    assert cond["observedGeneration"] == 2
    c = conditions.set_condition(c, "Succeeded", "True", "AllStepsSucceeded", "done", 2, at="2026-01-01T01:00:00Z")
    assert conditions.condition(c, "Succeeded")["lastTransitionTime"] == "2026-01-01T01:00:00Z"
    c = conditions.set_condition(c, "Degraded", "False", "AsExpected", "", 2)
    c = conditions.set_condition(c, "Progressing", "False", "Completed", "", 2)
    assert [x["type"] for x in c] == ["Succeeded", "Progressing", "Degraded"]


def test_job_state() -> None:
    assert jobs.job_state({"status": {}})[0] == "running"
    assert jobs.job_state({"spec": {"suspend": True}, "status": {}})[0] == "suspended"
    assert jobs.job_state({"status": {"succeeded": 1}})[0] == "succeeded"
    failed = {"status": {"failed": 4, "conditions": [{"type": "Failed", "status": "True",
                                                      "reason": "BackoffLimitExceeded", "message": "limit"}]}}
    assert jobs.job_state(failed) == ("failed", "BackoffLimitExceeded", "limit")


def test_progress_and_report_parsing() -> None:
    assert st.stage_progress({"state": "running", "step": 40, "total": 100, "loss": 1.25,
                              "tokens_per_second": 3000.5, "eta_seconds": 10}) == {
        "step": 40, "total": 100, "loss": 1.25, "tokens_per_second": 3000.5}
    assert st.stage_progress(None) == {}
    report = {"complete": True, "suites": {"heldout": {"accuracy": 0.5, "false_call_rate": 0.1},
                                           "chat": {"loss": 1.0}}}
    results = st.suite_results(report)
    assert [r.wire() for r in results] == [{"suite": "heldout", "accuracy": 0.5, "falseCallRate": 0.1},
                                           {"suite": "chat"}]
    assert st.mean_accuracy(results) == 0.5


def test_stage_status_reads_what_the_train_job_writes(tmp_path: Path) -> None:
    from kubetune_jobs import storage
    from kubetune_jobs.train.progress import PROGRESS_FILE, Progress

    uri = "s3://kubetune/default/run-a/stages/tools/checkpoints/step-40"
    Progress(storage.location(tmp_path), None, "run-a", "tools").update(
        state="running", step=40, total=100, loss=1.25, tokens_per_second=3000.5, checkpoint=uri)
    written = json.loads((tmp_path / PROGRESS_FILE).read_text())
    assert st.stage_progress(written) == {"step": 40, "total": 100, "loss": 1.25, "tokens_per_second": 3000.5,
                                          "checkpoint": uri}


def test_gates() -> None:
    gates = api.GatesSpec(min_accuracy={"heldout": 0.6}, max_false_call_rate=0.2)
    assert st.gate_failures(api.GatesSpec(), None) == []
    assert st.gate_failures(gates, None) == ["the final evaluation report could not be read"]
    ok = [api.SuiteResult(suite="heldout", accuracy=0.7, false_call_rate=0.1)]
    assert st.gate_failures(gates, ok) == []
    bad = [api.SuiteResult(suite="heldout", accuracy=0.5, false_call_rate=0.3)]
    msgs = st.gate_failures(gates, bad)
    assert len(msgs) == 2 and msgs[0].startswith("spec.evaluation.gates.minAccuracy.heldout")
