"""The ModelServe reconcile decision, pure: what was observed in, the objects to apply and delete, the
Jobs to start, the events and the new status out.

    serving revision   status.model.revision: its Deployment and Service, the stable Service pointing at it
    desired revision   what the spec (and the FineTuneRun it follows) asks for now
    candidate          a desired revision that differs from the serving one, rolled out beside it

The first revision goes straight into service once Ready. A later one is a candidate: once Ready, without
`promotion` the stable Service moves to it and the old revision goes; with `promotion` both are evaluated
(the serving one only if its scores on the same suites are not recorded) and the gate decides: promoted,
the old revision goes; rejected (on score, a failed evaluation, or not Ready within the readiness timeout),
the candidate goes and the serving revision carries on. A rejected revision is not tried again until the
model changes. Each revision that starts serving is benchmarked once. Waiting for a FineTuneRun is a state,
not an error; a bad spec, a missing Secret or an unavailable model get a condition naming the field and no
new Deployment (a revision already serving keeps serving).

spec.adapters live beside all this: their set (a ConfigMap every replica's adapter agent reads) changes
without a new revision, and each adapter's state comes from what the serving revision's Ready replicas report.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from typing import Any

from kubetune_jobs.contract import records
from kubetune_jobs.contract.records import ReplicaAdapters

from ..kube.conditions import condition, now, set_condition
from ..kube.events import Event
from ..kube.jobs import FAILED, SUCCEEDED, JobView
from . import adapters, api, promotion, resources, watch
from .source import Target, Unavailable, Waiting

READY, PROGRESSING, DEGRADED = "Ready", "Progressing", "Degraded"
# A candidate in these phases passed the evaluation part of the gate and runs at the full replica count.
AT_FULL_STRENGTH = ("ScalingUp", "Benchmarking")
HISTORY = 50


@dataclass(frozen=True)
class DeploymentView:
    """What the decision needs of a revision's Deployment."""

    name: str
    revision: str
    replicas: int = 0
    ready: int = 0
    stalled: str | None = None  # the Progressing=False message (ProgressDeadlineExceeded)

    @classmethod
    def of(cls, obj: dict[str, Any]) -> DeploymentView:
        st = obj.get("status") or {}
        stalled = next((c.get("message") or c.get("reason") for c in st.get("conditions") or []
                        if c.get("type") == "Progressing" and c.get("status") == "False"), None)
        return cls(obj["metadata"]["name"], obj["metadata"].get("labels", {}).get(resources.LABEL_REVISION, ""),
                   int((obj.get("spec") or {}).get("replicas") or 0), int(st.get("readyReplicas") or 0), stalled)


@dataclass
class Observed:
    name: str
    namespace: str
    generation: int | None
    status: api.ModelServeStatus  # as stored (`api.RESOURCE.parse_status`)
    now: str  # RFC 3339, for the readiness timeout
    build: resources.Build | None = None
    spec: api.ModelServeSpec | None = None
    problems: list[str] = field(default_factory=list)
    problem_reason: str = "InvalidSpec"
    resolution: Target | Waiting | Unavailable | None = None
    desired: str | None = None  # the desired revision (a Target resolved)
    deployments: dict[str, DeploymentView] = field(default_factory=dict)  # revision -> Deployment
    jobs: dict[str, JobView] = field(default_factory=dict)  # Job name -> view
    bench: dict[str, promotion.Evidence] = field(default_factory=dict)  # revision -> bench.json as stored
    # revision -> its evaluation's report.json as stored (the gate reads it), or why it could not be read
    reports: dict[str, promotion.Evidence] = field(default_factory=dict)
    # revision -> its live probe's last round (probe.json) as stored, for the serving and the watched revision
    probes: dict[str, promotion.Evidence] = field(default_factory=dict)
    pod_monitors: bool = False  # the PodMonitor CRD is installed
    keda: bool = False  # KEDA's ScaledObject CRD is installed
    store_error: str | None = None
    adapters: list[adapters.Resolution] | None = None  # spec.adapters resolved (None: not looked at)
    adapter_reports: dict[str, ReplicaAdapters | None] = field(default_factory=dict)  # Ready pod -> its report
    shared_copy: dict[str, Any] | None = None  # the serve's copy of the shared store's keys, to apply first


@dataclass
class Decision:
    status: api.ModelServeStatus  # what the handler writes (its `wire()`)
    apply: list[dict[str, Any]] = field(default_factory=list)  # create, or patch when they differ
    delete: list[tuple[str, str, str]] = field(default_factory=list)  # (apiVersion, kind, name)
    events: list[Event] = field(default_factory=list)


def _parse(t: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))


def _seconds_between(start: str, end: str) -> float:
    return (_parse(end) - _parse(start)).total_seconds()


def _later(t: str, seconds: int) -> str:
    return (_parse(t) + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _target(model: api.ServedModel) -> Target:
    return Target(model.source, uri=model.uri, hub=model.hub, adapter=model.adapter, digest=model.digest)


class _Decide:
    def __init__(self, obs: Observed) -> None:
        self.obs = obs
        self.status = obs.status.model_copy(deep=True)
        self.conditions: list[dict[str, Any]] = _conditions(obs.status)
        self.d = Decision(status=self.status)
        self.protected: set[str] = set()  # the previous revision while a promotion is watched: never retired

    # -- helpers
    def cond(self, type_: str, status: str, reason: str, message: str) -> None:
        self.conditions = set_condition(self.conditions, type_, status, reason, message, self.obs.generation)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.d.events.append(Event(type_, reason, message))

    def record(self, revision: str, decision: str, reason: str, message: str, digest: str | None) -> None:
        entry = api.HistoryEntry(time=self.obs.now, revision=revision, decision=decision, reason=reason,  # type: ignore[arg-type]
                                 message=message[:2000], digest=digest)
        self.status.history = [*self.status.history, entry][-HISTORY:]
        self.event("Warning" if decision in ("Rejected", "RolledBack") else "Normal", reason,
                   f"revision {revision}: {message}")

    def retire(self, revision: str) -> None:
        """Delete a revision's Deployment, Service and template (Jobs stay for their logs; owned, they go
        with the ModelServe)."""
        name = resources.deployment_name(self.obs.name, revision)
        self.d.delete += [("apps/v1", "Deployment", name), ("v1", "Service", name), ("v1", "ConfigMap", name)]

    def revision_objects(self, revision: str, target: Target, replicas: int) -> None:
        spec, b = self.obs.spec, self.obs.build
        assert spec is not None and b is not None
        template = resources.template_configmap(spec, b, revision)
        if template:
            self.d.apply.append(template)
        self.d.apply.append(resources.deployment(spec, b, revision, target, replicas))
        self.d.apply.append(resources.service(b, revision, stable=False))

    def serving_extras(self, revision: str) -> None:
        """The stable Service, the PodMonitor and the autoscaler, all on the serving revision."""
        spec, b = self.obs.spec, self.obs.build
        assert spec is not None and b is not None
        self.d.apply.append(resources.service(b, revision, stable=True))
        if spec.monitoring.probe.enabled:
            self.d.apply.append(resources.probe_deployment(spec, b, revision))
        else:
            self.d.delete.append(("apps/v1", "Deployment", resources.probe_name(b.name)))
        if spec.monitoring.pod_monitor and self.obs.pod_monitors:
            self.d.apply.append(resources.pod_monitor(spec, b))
        elif self.obs.pod_monitors:
            self.d.delete.append(("monitoring.coreos.com/v1", "PodMonitor", b.name))
        if spec.autoscaling.enabled:
            self.d.apply.append(resources.scaled_object(spec, b, revision) if self.obs.keda and b.prometheus
                                else resources.hpa(spec, b, revision))
        else:
            self.d.delete.append(("autoscaling/v2", "HorizontalPodAutoscaler", b.name))
            if self.obs.keda:
                self.d.delete.append(("keda.sh/v1alpha1", "ScaledObject", b.name))

    def replicas(self) -> int:
        spec = self.obs.spec
        assert spec is not None
        return max(spec.replicas, spec.autoscaling.min_replicas) if spec.autoscaling.enabled else spec.replicas

    def current(self) -> tuple[str, api.ServedModel] | None:
        model = self.status.model
        if model is not None and model.revision in self.obs.deployments:
            return model.revision, model
        return None

    def adapters(self) -> None:
        """The adapter set's ConfigMap, and each adapter's state (kept as it was while it cannot be worked out)."""
        obs, spec, b = self.obs, self.obs.spec, self.obs.build
        if spec is None or b is None:
            return
        if not spec.adapters:
            if self.status.adapters:  # the last ones were removed: every replica unloads them (pods keep the
                # last file of a deleted ConfigMap, so it is emptied, not deleted)
                self.d.apply.append(resources.adapters_configmap(b, adapters.adapter_set(spec, b.served_name, [], [])))
            self.status.adapters, self.status.adapters_ready = [], None
            return
        if obs.adapters is None:
            return
        the_set = adapters.adapter_set(spec, b.served_name, obs.adapters, self.status.adapters)
        self.d.apply.append(resources.adapters_configmap(b, the_set))
        self.status.adapters = adapters.statuses(spec, obs.adapters, obs.adapter_reports, self.status.adapters)
        self.status.adapters_ready = adapters.ready(self.status.adapters)

    def finish(self) -> Decision:
        obs = self.obs
        cur = self.current()
        if not obs.problems:
            self.adapters()
        self.status.probe = None
        if cur is not None and obs.spec is not None and obs.spec.monitoring.probe.enabled:
            self.status.probe = watch.read(obs.spec.monitoring.probe, cur[0], obs.probes.get(cur[0])).figures
        if cur is None:
            self.status.model = None
            self.status.ready_replicas = 0
            self.status.ready = None
        else:
            dep = obs.deployments[cur[0]]
            self.status.ready_replicas = dep.ready
            self.status.ready = f"{dep.ready}/{dep.replicas}"
            if obs.build is not None:
                self.status.endpoint = resources.endpoint(obs.name, obs.namespace)
            if dep.ready > 0:
                self.cond(READY, "True", "Serving", f"revision {cur[0]}: {dep.ready}/{dep.replicas} replicas ready")
            else:
                self.cond(READY, "False", "NoReadyReplicas", f"revision {cur[0]}: no replica is ready yet")
            if dep.stalled:
                self.cond(DEGRADED, "True", "ProgressDeadlineExceeded", f"revision {cur[0]}: {dep.stalled}")
        if obs.store_error:
            self.cond(DEGRADED, "True", "StoreUnreachable", obs.store_error)
        if condition(self.conditions, DEGRADED) is None:
            self.cond(DEGRADED, "False", "AsExpected", "")
        self.status.conditions = [api.Condition.model_validate(c, by_alias=True, by_name=False) for c in self.conditions]
        self.status.observed_generation = obs.generation
        # Assignments are not validated as they happen: the whole status is, once, so a decision can only
        # produce a status the CRD's schema admits (a bug raises here, before anything is written).
        self.d.status = api.ModelServeStatus.model_validate(self.status.model_dump(by_alias=True, mode="json"),
                                                            by_alias=True, by_name=False)
        # One manifest per object (the last word wins); a deletion wins over an apply made earlier in the
        # same decision (a rejected candidate, a replaced revision).
        deleted = set(self.d.delete)
        latest: dict[tuple[str, str, str], dict[str, Any]] = {}
        for m in self.d.apply:
            key = (m["apiVersion"], m["kind"], m["metadata"]["name"])
            latest.pop(key, None)
            latest[key] = m
        self.d.apply = [m for k, m in latest.items() if k not in deleted]
        self.d.delete = list(dict.fromkeys(self.d.delete))
        return self.d

    # -- the walk
    def run(self) -> Decision:
        obs = self.obs
        cur = self.current()
        degraded = False
        if obs.problems or obs.spec is None:
            message = "; ".join(obs.problems) or "the spec could not be read"
            self.cond(DEGRADED, "True", obs.problem_reason, message)
            if cur is None:
                self.cond(READY, "False", obs.problem_reason, message)
            self.cond(PROGRESSING, "False", obs.problem_reason, "fix the spec; nothing new rolls out until then")
            if (condition(_conditions(obs.status), DEGRADED) or {}).get("message") != message:
                self.event("Warning", obs.problem_reason, message)
            return self.finish()
        res = obs.resolution
        if cur is not None:
            self.keep_serving(cur[0])
            if self.watching(cur[0]):
                return self.finish()
        if isinstance(res, Waiting | Unavailable):
            degraded = isinstance(res, Unavailable)
            if degraded:
                self.cond(DEGRADED, "True", res.reason, res.message)
                if (condition(_conditions(obs.status), DEGRADED) or {}).get("reason") != res.reason:
                    self.event("Warning", res.reason, res.message)
            if cur is None:
                self.cond(READY, "False", res.reason, res.message)
            self.cond(PROGRESSING, "True" if isinstance(res, Waiting) else "False", res.reason,
                      res.message + (f"; revision {cur[0]} keeps serving" if cur else ""))
            self.clear_candidate(keep=None)
            return self.finish()
        assert isinstance(res, Target) and obs.desired is not None
        self.cond(DEGRADED, "False", "AsExpected", "")
        desired = obs.desired
        if cur is not None and desired == cur[0]:
            self.clear_candidate(keep=None)
            self.cond(PROGRESSING, "False", "Serving", f"revision {desired} serves {res.source}")
            self.benchmark(desired)
            return self.finish()
        if desired in self.status.rejected:
            self.clear_candidate(keep=None)
            self.cond(PROGRESSING, "False", "PromotionRejected",
                      f"revision {desired} was rejected; revision {cur[0] if cur else '–'} keeps serving; "
                      "change the model or its settings to try again")
            if cur is not None:
                self.benchmark(cur[0])
            return self.finish()
        self.candidate(desired, res, cur)
        return self.finish()

    def keep_serving(self, revision: str) -> None:
        spec = self.obs.spec
        model = self.status.model
        if spec is None or model is None:
            return
        self.revision_objects(revision, _target(model), self.replicas())
        self.serving_extras(revision)

    def watching(self, serving: str) -> bool:
        """A promotion under watch: keep the previous revision up; roll back on a failing probe round inside the
        window (or on none at all by its end); after a passing window, remove the previous revision. True when it
        rolled back (the decision is made)."""
        w, obs, spec = self.status.watch, self.obs, self.obs.spec
        if w is None or spec is None:
            return False
        if w.revision != serving or w.previous.revision not in obs.deployments:
            self.status.watch = None  # the watched revision no longer serves, or nothing is left to go back to
            return False
        self.protected.add(w.previous.revision)
        self.revision_objects(w.previous.revision, _target(w.previous), spec.promotion.keep_previous)
        verdict = watch.read(spec.monitoring.probe, serving, obs.probes.get(serving))
        over = _seconds_between(w.until, obs.now) >= 0
        # A round is judged by when it ran: one inside the window still counts when it is read after it.
        ran_inside = verdict.figures is None or _seconds_between(verdict.figures.time, w.until) >= 0 \
            if verdict.failure else False
        if verdict.failure and (not over or ran_inside):
            self.roll_back(w, "ProbeFailed", f"the live probe failed within the watch window: {verdict.failure}")
            return True
        if over and not verdict.seen:
            self.roll_back(w, "ProbeMissing", f"no probe round of revision {serving} was read within the watch "
                                              f"window (until {w.until}): the watch cannot vouch for it (the "
                                              f"{resources.probe_name(obs.name)} pod's log says why)")
            return True
        if over:
            self.status.watch = None
            self.protected.discard(w.previous.revision)
            self.retire(w.previous.revision)
            self.event("Normal", "WatchEnded", f"revision {serving} passed its watch (until {w.until}); revision "
                       f"{w.previous.revision} removed")
        return False

    def roll_back(self, w: api.WatchStatus, reason: str, message: str) -> None:
        bad = self.status.model
        prev = w.previous
        self.status.model = prev
        self.status.watch = None
        self.protected.discard(prev.revision)
        self.revision_objects(prev.revision, _target(prev), self.replicas())
        self.serving_extras(prev.revision)
        self.retire(w.revision)
        self.status.candidate = None
        self.status.rejected = [*self.status.rejected, w.revision][-32:]
        self.status.evaluations = [e for e in self.status.evaluations if e.revision != w.revision]
        self.status.benchmark = None
        self.status.tokens_per_second = None
        self.record(w.revision, "RolledBack", reason, f"{message}; revision {prev.revision} serves again",
                    bad.digest if bad else None)
        self.cond(PROGRESSING, "False", reason, f"revision {w.revision} rolled back: {message}; revision "
                  f"{prev.revision} serves again")

    def clear_candidate(self, keep: str | None) -> None:
        cur = self.current()
        for revision in self.obs.deployments:
            if revision != keep and (cur is None or revision != cur[0]) and revision not in self.protected:
                self.retire(revision)
        if keep is None:
            self.status.candidate = None

    def candidate(self, revision: str, target: Target, cur: tuple[str, api.ServedModel] | None) -> None:
        obs, spec = self.obs, self.obs.spec
        assert spec is not None
        old = self.status.candidate
        cand = old.model_copy() if old is not None and old.revision == revision else \
            api.CandidateStatus(revision=revision, started=obs.now)
        self.status.candidate = cand
        self.clear_candidate(keep=revision)
        full = self.replicas()
        # Beside a serving revision a candidate is evaluated on one replica, and scaled to the full count
        # before it takes traffic, so the serving capacity never drops.
        gated = cur is not None and spec.promotion.enabled and cand.phase not in AT_FULL_STRENGTH
        self.revision_objects(revision, target, 1 if gated else full)
        dep = obs.deployments.get(revision)
        waited = _seconds_between(cand.started, obs.now)
        served = api.ServedModel(revision=revision, source=target.source, uri=target.uri, digest=target.digest,
                                 hub=target.hub, adapter=target.adapter)
        ready = dep.ready if dep else 0
        if ready < 1 or (cur is not None and cand.phase in AT_FULL_STRENGTH and ready < full):
            if cur is not None and waited > spec.promotion.readiness_timeout_seconds:
                return self.reject(revision, target, "CandidateNotReady",
                                   f"{ready} of {full if cand.phase in AT_FULL_STRENGTH else 1} replicas Ready after "
                                   f"{waited:.0f} s (spec.promotion.readinessTimeoutSeconds "
                                   f"{spec.promotion.readiness_timeout_seconds})")
            where = f"revision {revision} rolling out ({ready} ready)"
            self.cond(PROGRESSING, "True", "RollingOut", where + (f"; revision {cur[0]} serves" if cur else ""))
            if cur is None:
                self.cond(READY, "False", "RollingOut", where)
            return None
        if cur is None:
            return self.promote(revision, served, None, "RolledOut", f"serves {target.source} ({ready} ready)")
        if not spec.promotion.enabled:
            if ready < full:
                return None
            return self.promote(revision, served, cur[0], "RolledOut", f"replaces revision {cur[0]} ({ready} ready)")
        if cand.phase not in AT_FULL_STRENGTH:
            verdict = self.evaluate(revision, target, cur)
            if verdict is None:
                return None
            cand.phase, cand.message = "ScalingUp", verdict[:2000]
            self.revision_objects(revision, target, full)  # the gate passed: to full strength
            if ready < full:
                self.cond(PROGRESSING, "True", "ScalingUp",
                          f"revision {revision} passed the gate; scaling to {full} before it takes traffic")
                return None
        if spec.promotion.gate.objectives():
            message = self.objectives(revision, target, cur)
            if message is None:
                return None
            cand.message = message[:2000]
        return self.promote(revision, served, cur[0], "Promoted", cand.message or "passed the gate")

    def evaluate(self, revision: str, target: Target, cur: tuple[str, api.ServedModel]) -> str | None:
        """The gate's message once it passed; None while evaluations run or when it rejected."""
        obs, spec, b = self.obs, self.obs.spec, self.obs.build
        assert spec is not None and b is not None and self.status.candidate is not None
        self.status.candidate.phase = "Evaluating"
        digest = resources.suites_digest(spec.promotion)
        recorded = {e.revision: e for e in self.status.evaluations if e.suites_digest == digest}
        needed = [revision] + ([] if cur[0] in recorded else [cur[0]])
        pending = []
        for rev in needed:
            name = resources.gate_job_name(obs.name, rev, spec.promotion)
            job = obs.jobs.get(name)
            if job is None:
                self.d.apply.append(resources.gate_job(spec, b, rev, target.datasets))
                pending.append(rev)
            elif job.state == FAILED:
                self.reject(revision, target, "EvaluationFailed",
                            f"evaluation Job {name} of revision {rev} failed: {job.reason} {job.message}".strip())
                return None
            elif job.state != SUCCEEDED:
                pending.append(rev)
            else:
                found = promotion.evaluation(spec.promotion, rev, digest, obs.reports.get(rev))
                if found is not None:
                    recorded[rev] = found
        # Only the serving revision's figures and the candidate's are kept (merge-patch replaces the list whole).
        self.status.evaluations = [e for r, e in recorded.items() if r in (cur[0], revision)]
        if pending:
            self.cond(PROGRESSING, "True", "Evaluating",
                      f"evaluating revision {', '.join(pending)} for promotion; revision {cur[0]} serves")
            return None
        # The serving objectives wait for the candidate's benchmark at full strength (`objectives`).
        verdict = promotion.gate(promotion.evaluation_only(spec.promotion), obs.reports.get(revision),
                                 self.serving_evaluation(cur[0]))
        if not verdict.passed:
            self.reject(revision, target, "EvaluationFailed" if verdict.unusable else "PromotionRejected",
                        verdict.message)
            return None
        return verdict.message

    def serving_evaluation(self, revision: str) -> promotion.Evidence:
        """The serving revision's evaluation: what the status recorded for these suites, else its report."""
        assert self.obs.spec is not None
        digest = resources.suites_digest(self.obs.spec.promotion)
        recorded = next((e for e in self.status.evaluations if e.revision == revision and e.suites_digest == digest),
                        None)
        return recorded or self.obs.reports.get(revision)

    def objectives(self, revision: str, target: Target, cur: tuple[str, api.ServedModel]) -> str | None:
        """The whole gate, the serving objectives included, once the candidate has been benchmarked at full
        strength (the Job is the one that benchmarks a revision once it serves: it is not run twice). The
        gate's message once it passed; None while the benchmark runs or when it rejected."""
        obs, spec, b = self.obs, self.obs.spec, self.obs.build
        assert spec is not None and b is not None and self.status.candidate is not None
        self.status.candidate.phase = "Benchmarking"
        name = resources.bench_job_name(obs.name, revision)
        job = obs.jobs.get(name)
        if job is not None and job.state == FAILED:
            self.reject(revision, target, "BenchmarkFailed",
                        f"benchmark Job {name} of revision {revision} failed: {job.reason} {job.message}".strip())
            return None
        if job is None or job.state != SUCCEEDED:
            if job is None:
                self.d.apply.append(resources.bench_job(spec, b, revision))
            self.cond(PROGRESSING, "True", "Benchmarking", f"benchmarking revision {revision} at full strength for "
                      f"the serving objectives; revision {cur[0]} serves")
            return None
        recorded = self.status.benchmark if self.status.benchmark and self.status.benchmark.revision == cur[0] \
            else None
        serving_bench = obs.bench.get(cur[0]) if cur[0] in obs.bench else recorded
        verdict = promotion.gate(spec.promotion, obs.reports.get(revision), self.serving_evaluation(cur[0]),
                                 obs.bench.get(revision), serving_bench)
        if not verdict.passed:
            self.reject(revision, target, "EvaluationFailed" if verdict.unusable else "PromotionRejected",
                        verdict.message)
            return None
        return verdict.message

    def promote(self, revision: str, served: api.ServedModel, old: str | None, reason: str, message: str) -> None:
        spec = self.obs.spec
        assert spec is not None
        previous, watched = self.status.model, self.status.watch
        self.status.model = served
        self.status.candidate = None
        self.status.evaluations = [e for e in self.status.evaluations if e.revision == revision]
        self.status.benchmark = None
        self.status.tokens_per_second = None
        self.serving_extras(revision)
        if watched is not None and watched.previous.revision != old:
            self.protected.discard(watched.previous.revision)
            self.retire(watched.previous.revision)  # a promotion during a watch: only the latest previous stays
        self.status.watch = None
        if old is not None and previous is not None and spec.promotion.watch_seconds:
            until = _later(self.obs.now, spec.promotion.watch_seconds)
            self.status.watch = api.WatchStatus(revision=revision, previous=previous, since=self.obs.now, until=until)
            self.protected.add(old)
            self.revision_objects(old, _target(previous), spec.promotion.keep_previous)
            self.event("Normal", "Watching", f"revision {revision} serves; revision {old} stays up "
                       f"({spec.promotion.keep_previous} replicas) until {until}, and a failing live probe moves "
                       "traffic back to it")
        elif old is not None:
            self.retire(old)
        decision = "Promoted" if reason == "Promoted" else "RolledOut"
        self.record(revision, decision, reason, message, served.digest)
        self.cond(PROGRESSING, "False", reason, f"revision {revision}: {message}")
        self.benchmark(revision)

    def reject(self, revision: str, target: Target, reason: str, message: str) -> None:
        self.retire(revision)
        self.status.candidate = None
        self.status.rejected = [*self.status.rejected, revision][-32:]
        self.status.evaluations = [e for e in self.status.evaluations if e.revision != revision]
        self.record(revision, "Rejected", reason, message, target.digest)
        cur = self.current()
        self.cond(PROGRESSING, "False", reason, f"revision {revision} rejected: {message}"
                  + (f"; revision {cur[0]} keeps serving" if cur else ""))

    def benchmark(self, revision: str) -> None:
        obs, spec, b = self.obs, self.obs.spec, self.obs.build
        assert spec is not None and b is not None
        dep = obs.deployments.get(revision)
        done = self.status.benchmark is not None and self.status.benchmark.revision == revision
        if not spec.benchmark.enabled or done or dep is None or dep.ready < 1:
            return
        name = resources.bench_job_name(obs.name, revision)
        job = obs.jobs.get(name)
        if job is None:
            self.d.apply.append(resources.bench_job(spec, b, revision))
            return
        if job.state == FAILED:
            self.status.benchmark = api.BenchmarkResult(revision=revision, failed=-1)
            self.event("Warning", "BenchmarkFailed", f"revision {revision}: Job {name} failed: {job.reason}")
            return
        if job.state != SUCCEEDED:
            return
        raw = obs.bench.get(revision)
        report = records.read(records.BenchReport, raw) if isinstance(raw, bytes | str) else None
        layout = resources.results_layout(spec, obs.namespace, obs.name)
        result = api.BenchmarkResult(revision=revision, report=layout.bench_file(revision))
        if report is not None:
            # Only finite figures: a status holding NaN is refused whole by the API server.
            levels = [lv for lv in report.levels if _measured(lv.output_throughput)]
            result.output_tokens_per_second = {str(lv.concurrency): round(lv.output_throughput, 2) for lv in levels}
            result.ttft_p95_seconds = {str(lv.concurrency): round(lv.ttft_p95_s, 4) for lv in report.levels
                                       if lv.ttft_p95_s is not None and _measured(lv.ttft_p95_s)}
            result.failed = sum(lv.failed for lv in report.levels)
            best = max((lv.output_throughput for lv in levels), default=None)
            self.status.tokens_per_second = round(best, 2) if best is not None else None
            self.event("Normal", "Benchmarked", f"revision {revision}: " + ", ".join(
                f"{c}: {v} tok/s" for c, v in result.output_tokens_per_second.items()))
        self.status.benchmark = result


def _measured(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def _conditions(status: api.ModelServeStatus) -> list[dict[str, Any]]:
    return [c.model_dump(by_alias=True, exclude_none=True) for c in status.conditions]


def decide(obs: Observed) -> Decision:
    """The next move of one ModelServe (pure: the same observation gives the same decision)."""
    return _Decide(obs).run()


__all__ = ["Decision", "DeploymentView", "Observed", "decide", "now"]
