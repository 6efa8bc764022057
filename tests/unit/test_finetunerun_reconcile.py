"""The FineTuneRun reconcile decision without kopf: every phase and condition transition, restart, a failed
Job, a refused Job, skipping verified outputs, gates, the store degrading and recovering. Every status a
decision here makes is checked as the API server checks the write (`decide` below): accepted, nothing pruned."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_operator_api import minimal

from kubetune_jobs.contract import records
from kubetune_jobs.contract.layout import RunLayout
from kubetune_operator import naming
from kubetune_operator.finetunerun import api, reconcile
from kubetune_operator.finetunerun.plan import build_plan, stage_models
from kubetune_operator.finetunerun.reconcile import Decision, Observed
from kubetune_operator.kube.conditions import find
from kubetune_operator.kube.jobs import FAILED, RUNNING, SUCCEEDED, JobView
from support.crd_status import assert_written_whole

ROOT = "s3://kubetune"
LAYOUT = RunLayout.of(ROOT, "ml", "r")


def decide(obs: Observed) -> Decision:
    """The decision, its status what the handler writes (the typed model's dump), checked as the API server
    checks the write."""
    d = reconcile.decide(obs)
    if d.status is not None:
        assert_written_whole(api.RESOURCE, d.status.wire())
    return d


def observed(raw: dict | None = None, status: api.FineTuneRunStatus | dict | None = None, generation: int = 1,
             **fields) -> Observed:
    """What the handler observes; a status given typed is read back as the API server returns it (its dump)."""
    spec = api.parse_spec(raw or minimal())
    if isinstance(status, api.FineTuneRunStatus):
        status = status.wire()
    return Observed(name="r", generation=generation, status=status or {}, spec=spec,
                    plan=build_plan("r", "ml", spec, ROOT, uid="u-1"), layout_root=LAYOUT.root,
                    datasets={s.name: LAYOUT.data(s.name) for s in spec.stages},
                    models=stage_models(LAYOUT, spec),
                    queued=bool(spec.resources.kueue_queue), **fields)


def ok(name: str, seconds: float = 12.0) -> JobView:
    return JobView(naming.job_name("r", name), SUCCEEDED, "Completed", "", seconds)


def cond(decision, type_: str) -> dict:
    found = find(decision.status.conditions, type_)
    return found.wire() if found else {}


def names(steps) -> list[str]:
    return [s.name for s in steps]


def test_a_new_run_creates_its_first_step_only() -> None:
    d = decide(observed())
    assert names(d.create) == ["prepare-chat"]
    assert d.status.phase == "Running" and d.status.current_step == "prepare-chat"
    assert cond(d, "Succeeded")["status"] == "Unknown" and cond(d, "Progressing")["reason"] == "StepRunning"
    assert d.status.steps_done == [] and d.status.observed_generation == 1
    assert [s.phase for s in d.status.stages] == ["Preparing", "Pending"]


def test_a_queued_run_waits_for_admission() -> None:
    raw = minimal()
    raw["resources"] = {"kueueQueue": "team-a"}
    d = decide(observed(raw))
    assert cond(d, "Progressing")["reason"] == "Suspended" and "Kueue" in cond(d, "Progressing")["message"]


def test_a_succeeded_job_moves_the_run_to_the_next_step() -> None:
    obs = observed(jobs={"prepare-chat": ok("prepare-chat")})
    d = decide(obs)
    assert names(d.create) == ["prepare-tools"] and d.status.steps_done == ["prepare-chat"]
    assert [(s.name, j.seconds) for s, j in d.finished] == [("prepare-chat", 12.0)]
    assert [e.reason for e in d.events] == ["StepSucceeded"]
    # Once recorded done, the step is neither re-checked nor announced again.
    again = decide(replace(observed(status=d.status), jobs={"prepare-tools": JobView("x", RUNNING)}))
    assert again.create == [] and again.events == [] and again.status.steps_done == ["prepare-chat"]


def test_verified_outputs_are_skipped_and_announced_once() -> None:
    d = decide(observed(verified={"prepare-chat": True, "prepare-tools": False}))
    assert [s.name for s in d.skipped] == ["prepare-chat"] and names(d.create) == ["prepare-tools"]
    assert [(e.reason, e.message) for e in d.events] == [("StepSkipped", "step prepare-chat: outputs already exist "
                                                                         "and verify")]


def test_a_failed_job_fails_the_run_with_its_reason_and_starts_nothing() -> None:
    failed = JobView("r-prepare-tools", FAILED, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    d = decide(observed(status={"stepsDone": ["prepare-chat"]}, jobs={"prepare-tools": failed}))
    assert d.create == [] and d.status.phase == "Failed"
    c = cond(d, "Succeeded")
    assert (c["status"], c["reason"]) == ("False", "PrepareFailed")
    assert "prepare-tools" in c["message"] and "BackoffLimitExceeded" in c["message"] and "backoff limit" in c["message"]
    assert cond(d, "Progressing")["status"] == "False"
    assert [e.type for e in d.events] == ["Warning"]
    stages = {s.name: s.phase for s in d.status.stages}
    assert stages["tools"] == "Failed"


def test_a_job_the_api_server_refuses_fails_its_step_with_the_servers_message() -> None:
    refused = JobView("r-prepare-chat", FAILED, "JobRefused", "Job ml/r-prepare-chat: the API server refused it (422): "
                      "spec.template.spec.containers[0].image: Required value")
    d = decide(observed(jobs={"prepare-chat": refused}))
    assert d.status.phase == "Failed" and "Required value" in cond(d, "Succeeded")["message"]
    assert "JobRefused" in cond(d, "Succeeded")["message"]


def test_invalid_specs_and_missing_secrets_fail_without_jobs() -> None:
    bad = Observed(name="r", generation=1, status={}, problems=["spec.lora.r: Input should be greater than 0"])
    d = decide(bad)
    assert d.create == [] and d.status.phase == "Failed"
    assert cond(d, "Succeeded")["reason"] == "InvalidSpec" and "spec.lora.r" in cond(d, "Succeeded")["message"]
    secret = replace(observed(), problems=["spec.storage.credentialsSecret: Secret 's' not found"],
                     problem_reason="SecretNotFound")
    assert cond(decide(secret), "Succeeded")["reason"] == "SecretNotFound"


def test_training_progress_and_evaluation_results_reach_the_status() -> None:
    progress = records.Progress(state="running", step=5, total=10, loss=1.5, tokens_per_second=1200.0)
    done = ["prepare-chat", "prepare-tools", "eval-base"]
    d = decide(observed(status={"stepsDone": done}, jobs={"train-chat": JobView("r-train-chat", RUNNING)},
                        progress={"chat": progress}))
    assert d.status.progress == "5/10" and d.status.loss == 1.5
    assert d.status.stages[0].wire() == {"name": "chat", "phase": "Training", "step": 5, "total": 10, "loss": 1.5,
                                         "tokensPerSecond": 1200.0}
    report = records.ReportSummary(complete=True, suites={"heldout": records.Suite(accuracy=0.75, false_call_rate=0.1)})
    d = decide(observed(status={"stepsDone": done + ["train-chat"]}, jobs={"eval-chat": ok("eval-chat")},
                        reports={"chat": ("s3://kubetune/ml/r/eval/chat/report.json", report)},
                        progress={"chat": progress}))
    assert d.status.wire()["evaluations"] == [{"label": "chat", "report": "s3://kubetune/ml/r/eval/chat/report.json",
                                              "suites": [{"suite": "heldout", "accuracy": 0.75, "falseCallRate": 0.1}],
                                              "accuracy": 0.75}]
    assert d.status.accuracy == 0.75


def _all_done(obs: Observed, accuracy: float = 0.8, false_call_rate: float = 0.05) -> Observed:
    return replace(obs, jobs={s.name: ok(s.name) for s in obs.plan},
                   reports={s.label: (LAYOUT.report(s.label), records.ReportSummary(
                       complete=True, suites={"heldout": records.Suite(accuracy=accuracy,
                                                                       false_call_rate=false_call_rate)}))
                            for s in obs.plan if s.kind == "evaluate"})


def test_a_last_stage_that_publishes_its_adapter_alone_records_no_merged_model() -> None:
    raw = minimal()
    raw["stages"][1]["training"] = {"merge": False}
    raw["evaluation"] = {"suites": []}
    d = decide(_all_done(observed(raw)))
    arts = d.status.wire()["artifacts"]
    assert d.status.phase == "Succeeded"
    assert arts["adapters"] == {"chat": LAYOUT.adapter("chat"), "tools": LAYOUT.adapter("tools")}
    assert arts["models"] == {"chat": LAYOUT.merged("chat")} and "finalModel" not in arts


def test_a_finished_run_succeeds_once_and_is_then_left_alone() -> None:
    d = decide(_all_done(observed()))
    assert d.status.phase == "Succeeded" and cond(d, "Succeeded")["reason"] == "AllStepsSucceeded"
    assert cond(d, "Progressing")["reason"] == "Completed"
    assert d.status.artifacts.final_model == LAYOUT.merged("tools")
    assert sum(e.reason == "RunSucceeded" for e in d.events) == 1
    assert decide(observed(status=d.status)).status is None, "a settled run is not reconciled again"
    # A new generation of a finished run is looked at again.
    assert decide(observed(status=d.status, generation=2)).status is not None


def test_gates_fail_the_run_naming_the_gate() -> None:
    raw = minimal()
    raw["evaluation"] = {"suites": [{"name": "heldout"}], "gates": {"minAccuracy": {"heldout": 0.9}}}
    d = decide(_all_done(observed(raw)))
    assert d.status.phase == "Failed" and cond(d, "Succeeded")["reason"] == "GateNotMet"
    assert "spec.evaluation.gates.minAccuracy.heldout" in cond(d, "Succeeded")["message"]


NAN, INF = float("nan"), float("inf")


def test_training_figures_that_are_not_numbers_stay_out_of_the_status() -> None:
    """progress.json comes from the store: a diverged loss (NaN) or an Infinity is no figure. The status leaves
    it out; holding it, the status write would be refused whole, and the run's status would never move again."""
    progress = records.Progress(state="running", step=5, total=10, loss=NAN, tokens_per_second=INF)
    done = ["prepare-chat", "prepare-tools", "eval-base"]
    d = decide(observed(status={"stepsDone": done, "loss": 1.25}, jobs={"train-chat": JobView("r-train-chat", RUNNING)},
                        progress={"chat": progress}))
    assert d.status.stages[0].wire() == {"name": "chat", "phase": "Training", "step": 5, "total": 10}
    assert d.status.progress == "5/10" and d.status.loss == 1.25, "the last finite loss stays"


@pytest.mark.parametrize(("accuracy", "false_call_rate"), [
    (NAN, 0.05), (INF, 0.05), (-INF, 0.05), (7.5, 0.05), (-0.1, 0.05), (0.8, NAN), (0.8, 1.5)])
def test_a_figure_that_is_not_a_share_fails_its_gate(accuracy: float, false_call_rate: float) -> None:
    """report.json comes from the store: an accuracy or a rate that is not a number in [0, 1] fails the gate
    on it (it never passes one), and stays out of the status."""
    raw = minimal()
    raw["evaluation"] = {"suites": [{"name": "heldout"}],
                         "gates": {"minAccuracy": {"heldout": 0.5}, "maxFalseCallRate": 0.2}}
    d = decide(_all_done(observed(raw), accuracy, false_call_rate))
    assert d.status.phase == "Failed" and cond(d, "Succeeded")["reason"] == "GateNotMet"
    gate = "minAccuracy.heldout" if accuracy != 0.8 else "maxFalseCallRate"
    assert f"spec.evaluation.gates.{gate}" in cond(d, "Succeeded")["message"]
    (result,) = d.status.evaluations[-1].suites
    assert (result.accuracy, result.false_call_rate) == (None if accuracy != 0.8 else 0.8,
                                                         None if false_call_rate != 0.05 else 0.05)


def test_a_status_read_back_with_a_field_it_cannot_read_is_rebuilt() -> None:
    """A status written under an older schema, or edited by hand: the field that does not read starts afresh,
    the others are kept."""
    status = {"stepsDone": ["prepare-chat"], "stages": "not a list", "phase": "Running", "kopf": {"progress": {}}}
    d = decide(observed(status=status, jobs={"prepare-tools": JobView("r-prepare-tools", RUNNING)}))
    assert d.status.steps_done == ["prepare-chat"] and [s.name for s in d.status.stages] == ["chat", "tools"]


def test_a_restarted_operator_adopts_the_running_step() -> None:
    status = decide(observed(jobs={"prepare-chat": ok("prepare-chat")})).status
    d = decide(observed(status=status, jobs={"prepare-tools": JobView("r-prepare-tools", RUNNING)}))
    assert d.create == [] and d.status.current_step == "prepare-tools"


def test_the_store_degrades_and_recovers() -> None:
    d = decide(observed(store_error="reading s3://kubetune/ml/r/stages/chat/progress.json: ConnectionError"))
    assert cond(d, "Degraded")["status"] == "True" and cond(d, "Degraded")["reason"] == "StoreUnreachable"
    assert names(d.create) == ["prepare-chat"], "an unreachable store never blocks the plan"
    d2 = decide(observed(status=d.status))
    assert cond(d2, "Degraded")["status"] == "False" and cond(d2, "Degraded")["reason"] == "AsExpected"
