"""The FineTuneRun reconcile decision, pure: what was observed in, what to do and the new status out.

    decision = decide(observed)
    # the handler creates decision.create's Jobs, posts decision.events, writes decision.status

The walk over the plan: steps already recorded done are skipped; a step with a Job follows its Job
(succeeded -> done, failed -> the run fails with the Job's reason, running or suspended -> report it and
stop); a step without a Job whose outputs verify in the store (same fingerprint) is skipped; the first
step with neither gets its Job. A multi-node step whose Indexed Job failed is started again as a new
Job while the restart policy allows (`group.restart_attempt`). When every step is done the evaluation gates decide Succeeded or Failed.
A finished run whose generation was already reconciled is left alone. No I/O happens here: the handler
gathers `Observed` (the Jobs, the store checks, progress.json and report.json records) first, and writes
the dump of the typed status (`api.FineTuneRunStatus`) the decision carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubetune_jobs.contract import records

from ..kube import jobs as jobstate
from ..kube.conditions import find, set_typed
from ..kube.events import Event
from ..kube.jobs import JobView
from . import api, group, results
from .plan import BASE_LABEL, Step
from .results import (
    DEGRADED,
    FAILED,
    FINISHED_PHASES,
    PENDING,
    PHASE_SUCCEEDED,
    PROGRESSING,
    RUNNING,
    SUCCEEDED,
)


@dataclass
class Observed:
    """Everything a reconcile decides from. `problems` non-empty means the run is invalid."""

    name: str
    generation: int | None
    status: dict[str, Any]  # the status as read (owned keys and kopf's; `decide` reads it typed)
    spec: api.FineTuneRunSpec | None = None
    problems: list[str] = field(default_factory=list)
    problem_reason: str = "InvalidSpec"  # InvalidSpec | SecretNotFound
    plan: list[Step] = field(default_factory=list)
    layout_root: str = ""
    datasets: dict[str, str] = field(default_factory=dict)  # stage -> prepared data URI
    # stage -> (adapter URI, merged URI or None where the stage publishes its adapter only)
    models: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    jobs: dict[str, JobView] = field(default_factory=dict)  # step name -> its Job
    verified: dict[str, bool] = field(default_factory=dict)  # step name -> outputs verify (steps without a Job)
    progress: dict[str, records.Progress | None] = field(default_factory=dict)  # stage -> progress.json
    reports: dict[str, tuple[str, records.ReportSummary | None]] = field(default_factory=dict)  # label -> (URI, report)
    store_error: str | None = None  # a store read that failed (degrades status, never blocks the plan)
    queued: bool = False  # Jobs are created suspended (Kueue)
    jobset: bool = False  # multi-node steps run as JobSets (which restart their own groups)


@dataclass
class Decision:
    status: api.FineTuneRunStatus | None  # the status to write (its dump); None: leave the resource alone
    create: list[Step] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)  # step name -> the group start to create (default 0)
    events: list[Event] = field(default_factory=list)
    finished: list[tuple[Step, JobView]] = field(default_factory=list)  # Jobs seen succeeding now
    skipped: list[Step] = field(default_factory=list)  # steps done by verified outputs now


class _Walk:
    def __init__(self, obs: Observed) -> None:
        self.obs = obs
        self.old = api.FineTuneRunStatus.read(obs.status)
        self.status = self.old.model_copy(deep=True)
        self.decision = Decision(status=None)

    def cond(self, type_: str, status: str, reason: str, message: str) -> None:
        self.status.conditions = set_typed(self.status.conditions, type_, status, reason, message, self.obs.generation)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.decision.events.append(Event(type_, reason, message))

    def finish(self) -> Decision:
        if self.obs.store_error:
            self.cond(DEGRADED, "True", "StoreUnreachable", self.obs.store_error)
        elif find(self.status.conditions, DEGRADED):
            self.cond(DEGRADED, "False", "AsExpected", "")
        self.status.observed_generation = self.obs.generation
        self.decision.status = self.status
        return self.decision

    def fail(self, reason: str, message: str) -> Decision:
        self.status.phase, self.status.current_step, self.status.progress = FAILED, None, None
        self.cond(SUCCEEDED, "False", reason, message)
        self.cond(PROGRESSING, "False", reason, "the run stopped")
        self.event("Warning", reason, message)
        return self.finish()

    def mark_stage(self, step: Step, phase: str, /, **fields: Any) -> None:
        for stage in self.status.stages:
            if stage.name == step.stage:
                stage.phase = phase
                for name, value in fields.items():
                    setattr(stage, name, value)

    def init_status(self) -> None:
        spec = self.obs.spec
        assert spec is not None
        old_stages = {s.name: s for s in self.status.stages}
        self.status.stages = [old_stages.get(s.name) or api.StageStatus(name=s.name, phase=PENDING)
                              for s in spec.stages]
        self.status.artifacts = self.status.artifacts.model_copy(
            update={"root": self.obs.layout_root, "datasets": dict(self.obs.datasets)})
        if not self.old.phase:
            self.status.phase = PENDING

    def after_step(self, step: Step, reason: str, message: str) -> None:
        arts = self.status.artifacts
        if step.kind == "train" and step.stage:
            self.mark_stage(step, PHASE_SUCCEEDED, **results.stage_progress(self.obs.progress.get(step.stage)))
            adapter, merged = self.obs.models[step.stage]
            arts.adapters = {**arts.adapters, step.stage: adapter}
            if merged:
                arts.models = {**arts.models, step.stage: merged}
                arts.final_model = merged
            else:
                arts.final_model = None  # the last stage's model is its adapter (on the stage's base)
        elif step.kind == "evaluate" and step.label:
            if step.stage:
                self.mark_stage(step, PHASE_SUCCEEDED)
            uri, report = self.obs.reports.get(step.label, ("", None))
            found = results.suite_results(report)
            entry = api.EvaluationResult(label=step.label, report=uri, suites=found,
                                         accuracy=results.mean_accuracy(found))
            if entry.accuracy is not None:
                self.status.accuracy = entry.accuracy
            self.status.evaluations = [e for e in self.status.evaluations if e.label != step.label] + [entry]
        if step.name not in self.old.steps_done:
            self.event("Normal", reason, f"step {step.name}: {message}")

    def running(self, step: Step, state: str) -> None:
        self.status.phase, self.status.current_step = RUNNING, step.name
        self.status.current_stage = step.stage or step.label
        self.status.progress = None
        if step.kind == "prepare":
            self.mark_stage(step, "Preparing")
        elif step.kind == "train" and step.stage:
            progress = results.stage_progress(self.obs.progress.get(step.stage))
            self.mark_stage(step, "Training", **progress)
            if progress.get("step") is not None and progress.get("total"):
                self.status.progress = f"{progress['step']}/{progress['total']}"
            if progress.get("loss") is not None:
                self.status.loss = progress["loss"]
        elif step.kind == "evaluate" and step.stage:
            self.mark_stage(step, "Evaluating")
        suspended = state == jobstate.SUSPENDED
        what = "waiting for Kueue admission" if suspended else "running"
        self.cond(SUCCEEDED, "Unknown", "InProgress", f"step {step.name} {what}")
        self.cond(PROGRESSING, "True", "Suspended" if suspended else "StepRunning", f"step {step.name} {what}")

    def complete(self, steps: list[Step]) -> Decision:
        spec = self.obs.spec
        assert spec is not None
        final_eval = next((s for s in reversed(steps) if s.kind == "evaluate" and s.label != BASE_LABEL), None)
        found = None
        if final_eval is not None:
            entry = next((e for e in self.status.evaluations if e.label == final_eval.label), None)
            found = entry.suites if entry and entry.suites else None
        failures = results.gate_failures(spec.evaluation.gates, found)
        self.status.current_step = self.status.current_stage = self.status.progress = None
        if failures:
            return self.fail("GateNotMet", "; ".join(failures))
        self.status.phase = PHASE_SUCCEEDED
        self.cond(SUCCEEDED, "True", "AllStepsSucceeded", f"{len(steps)} steps done")
        self.cond(PROGRESSING, "False", "Completed", "the run finished")
        if self.old.phase != PHASE_SUCCEEDED:
            self.event("Normal", "RunSucceeded", f"{len(steps)} steps done")
        return self.finish()


def settled(status: dict[str, Any], generation: int | None) -> bool:
    """A finished run whose current generation was reconciled: nothing more to do."""
    return status.get("phase") in FINISHED_PHASES and status.get("observedGeneration") == generation


def decide(obs: Observed) -> Decision:
    """The next move of one run (pure; the same observation gives the same decision)."""
    walk = _Walk(obs)
    if settled(obs.status, obs.generation):
        return Decision(status=None)
    if obs.problems or obs.spec is None:
        return walk.fail(obs.problem_reason, "; ".join(obs.problems) or "the spec could not be read")
    walk.init_status()
    names = {s.name for s in obs.plan}
    done = [s for s in walk.old.steps_done if s in names]
    for step in obs.plan:
        if step.name in done:
            continue
        job = obs.jobs.get(step.name)
        if job is None and obs.verified.get(step.name):
            done.append(step.name)
            walk.decision.skipped.append(step)
            walk.after_step(step, "StepSkipped", "outputs already exist and verify")
            continue
        if job is None:
            walk.decision.create.append(step)  # the handler posts JobCreated once the API accepted it
            job = JobView(group.workload_name(obs.name, step, 0, obs.jobset),
                          jobstate.SUSPENDED if obs.queued else jobstate.RUNNING)
        if job.state == jobstate.SUCCEEDED:
            done.append(step.name)
            walk.decision.finished.append((step, job))
            walk.after_step(step, "StepSucceeded", f"Job {job.name} succeeded")
            continue
        walk.status.steps_done = done
        attempt = group.restart_attempt(step, job, obs.spec, obs.jobset) if job.state == jobstate.FAILED else None
        if attempt is not None:
            walk.decision.create.append(step)
            walk.decision.attempts[step.name] = attempt
            walk.event("Warning", "GroupRestarted",
                       f"step {step.name}: Job {job.name} failed ({job.reason}); starting the group again from its "
                       f"newest checkpoint (restart {attempt} of {obs.spec.resources.backoff_limit})")
            job = JobView(group.workload_name(obs.name, step, attempt, obs.jobset),
                          jobstate.SUSPENDED if obs.queued else jobstate.RUNNING, attempt=attempt)
        if job.state == jobstate.FAILED:
            walk.mark_stage(step, FAILED)
            detail = f": {job.message}" if job.message else ""
            return walk.fail(f"{step.kind.capitalize()}Failed",
                             f"step {step.name}: Job {job.name} failed: {job.reason}{detail}")
        walk.running(step, job.state)
        return walk.finish()
    walk.status.steps_done = done
    return walk.complete(obs.plan)
