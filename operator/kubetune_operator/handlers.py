"""kopf handlers: thin. They read state (the run, its Jobs, progress files), call plan/resources, write status.

Flow: a run is created/resumed/resynced, or one of its Jobs changes -> `reconcile` walks the plan in order:
done steps are skipped, a step's Job is adopted if it exists (deterministic name; 409 on create = adopt),
a step whose outputs already verify in the store is skipped, the first unfinished step gets its Job, and
status is rewritten whole. One lock per run serialises the run's reconciles inside this process.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import kopf
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException

from . import api, layout, metrics, naming, plan, resources, validation
from . import status as st
from .store import StoreAccess, locator

log = logging.getLogger(__name__)
TEST_URL_ENV = "KUBETUNE_KUBE_URL"  # an emulator or proxy URL (tests, bench); unset in a cluster
RESYNC_SECONDS = float(os.environ.get("KUBETUNE_RESYNC_SECONDS", "30"))
CLEANUP_ATTEMPTS = int(os.environ.get("KUBETUNE_CLEANUP_ATTEMPTS", "3"))
CLEANUP_TIMEOUT = float(os.environ.get("KUBETUNE_CLEANUP_TIMEOUT", "60"))
CLEANUP_DELAY = float(os.environ.get("KUBETUNE_CLEANUP_DELAY", "10"))
MERGE = "application/merge-patch+json"
# The status fields we own (camelCase); kopf's own bookkeeping under status is left alone.
STATUS_KEYS = frozenset(f.alias or name for name, f in api.FineTuneRunStatus.model_fields.items())


@dataclass
class Context:
    """What handlers share in one operator (kopf's memo): API client and per-run locks."""

    api: k8s.ApiClient
    locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)


async def _api_client() -> k8s.ApiClient:
    url = os.environ.get(TEST_URL_ENV)
    if url:
        return k8s.ApiClient(k8s.Configuration(host=url))
    try:
        k8s_config.load_incluster_config()
    except k8s_config.ConfigException:
        await k8s_config.load_kube_config()
    return k8s.ApiClient()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    url = os.environ.get(TEST_URL_ENV)
    if url:
        return kopf.ConnectionInfo(server=url, insecure=True, default_namespace="default")
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = naming.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=api.GROUP, key="last-handled-configuration")
    settings.posting.level = logging.WARNING  # our own events describe transitions; kopf posts only problems
    settings.watching.server_timeout = int(os.environ.get("KUBETUNE_WATCH_TIMEOUT", "300"))
    # A run deleted while its resync timer is mid-reconcile: re-check the timer's exit every second, not
    # kopf's default minute, so deletion (and the cleanup finalizer) is not held up.
    settings.background.cancellation_polling = 1.0
    memo.ctx = Context(api=await _api_client())


@kopf.on.cleanup()
async def cleanup_client(memo: kopf.Memo, **_: Any) -> None:
    ctx: Context | None = getattr(memo, "ctx", None)
    if ctx is not None:
        await ctx.api.close()


# ---------------------------------------------------------------- run and Job triggers

@kopf.on.resume(api.GROUP, api.VERSION, api.PLURAL)
@kopf.on.create(api.GROUP, api.VERSION, api.PLURAL)
@kopf.on.update(api.GROUP, api.VERSION, api.PLURAL, field="spec")
async def run_changed(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    await reconcile(memo.ctx, namespace, name)


def _unfinished(status: dict[str, Any], **_: Any) -> bool:
    return (status or {}).get("phase") not in st.FINISHED_PHASES


@kopf.timer(api.GROUP, api.VERSION, api.PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS,
            when=_unfinished)
async def resync(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """Refresh training progress and catch any Job change a watch missed."""
    await reconcile(memo.ctx, namespace, name)


def _owner_run(meta: dict[str, Any]) -> str | None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == api.KIND and ref.get("apiVersion", "").startswith(api.GROUP + "/"):
            return ref.get("name")
    return None


_JOB_FILTER = {naming.LABEL_MANAGED_BY: naming.MANAGED_BY}


@kopf.on.field("batch", "v1", "jobs", field="status.succeeded", labels=_JOB_FILTER)
@kopf.on.field("batch", "v1", "jobs", field="status.conditions", labels=_JOB_FILTER)
@kopf.on.field("batch", "v1", "jobs", field="spec.suspend", labels=_JOB_FILTER)
async def job_changed(meta: dict[str, Any], namespace: str, memo: kopf.Memo, **_: Any) -> None:
    run = _owner_run(meta)
    if run:
        await reconcile(memo.ctx, namespace, run)


# ---------------------------------------------------------------- deletion

@kopf.on.delete(api.GROUP, api.VERSION, api.PLURAL, optional=True)
async def forget(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """Drop the run's metric series and lock (optional: adds no finalizer of its own)."""
    metrics.forget_run(namespace, name)
    memo.ctx.locks.pop((namespace, name), None)


def _cleanup_wanted(spec: dict[str, Any], **_: Any) -> bool:
    return (spec or {}).get("cleanupPolicy") == "Delete"


@kopf.on.delete(api.GROUP, api.VERSION, api.PLURAL, when=_cleanup_wanted)
async def delete_artifacts(name: str, namespace: str, spec: dict[str, Any], body: kopf.Body, retry: int,
                           memo: kopf.Memo, **_: Any) -> None:
    """Remove the run's artifacts; after CLEANUP_ATTEMPTS failures give up (warning event), never block."""
    metrics.forget_run(namespace, name)
    try:
        parsed = api.parse_spec(dict(spec))
    except api.SpecError:
        return  # an invalid run never produced artifacts
    root = layout.RunLayout.of(layout.store_root(parsed.storage.bucket), namespace, name).root
    try:
        access = await _store_access(memo.ctx, parsed, namespace)
        if access is None:
            raise RuntimeError("no object store endpoint configured")
        await asyncio.wait_for(asyncio.to_thread(lambda: locator(access)(root).delete()), CLEANUP_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any store failure is retried a bounded number of times
        reason = f"{type(exc).__name__}: {exc}"
        if retry + 1 < CLEANUP_ATTEMPTS:
            raise kopf.TemporaryError(f"deleting {root} failed (attempt {retry + 1}/{CLEANUP_ATTEMPTS}): {reason}",
                                      delay=CLEANUP_DELAY) from None
        metrics.RECONCILE_ERRORS.labels(reason="CleanupAbandoned").inc()
        kopf.warn(body, reason="CleanupAbandoned",
                  message=f"gave up deleting {root} after {CLEANUP_ATTEMPTS} attempts: {reason}")
        return
    kopf.info(body, reason="ArtifactsDeleted", message=f"deleted {root}")


# ---------------------------------------------------------------- reconcile

async def _secret(ctx: Context, namespace: str, name: str) -> dict[str, str] | None:
    try:
        secret = await k8s.CoreV1Api(ctx.api).read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


async def _secret_problems(ctx: Context, spec: api.FineTuneRunSpec, namespace: str) -> list[str]:
    out = []
    for path, name, keys in validation.referenced_secrets(spec):
        data = await _secret(ctx, namespace, name)
        if data is None:
            out.append(f"{path}: Secret {name!r} not found in namespace {namespace!r}")
            continue
        missing = [k for k in keys if k not in data]
        if missing:
            out.append(f"{path}: Secret {name!r} lacks key(s) {', '.join(missing)}")
    return out


async def _store_access(ctx: Context, spec: api.FineTuneRunSpec, namespace: str) -> StoreAccess | None:
    endpoint = spec.storage.endpoint or os.environ.get("KUBETUNE_S3_ENDPOINT")
    if not endpoint:
        return None
    if "://" not in endpoint:
        endpoint = f"{'https' if spec.storage.secure else 'http'}://{endpoint}"
    if spec.storage.credentials_secret:
        data = await _secret(ctx, namespace, spec.storage.credentials_secret) or {}
        return StoreAccess(endpoint, data.get("AWS_ACCESS_KEY_ID"), data.get("AWS_SECRET_ACCESS_KEY"))
    return StoreAccess(endpoint, os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY"))


def _event(body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    try:
        kopf.event(body, type=type_, reason=reason, message=message)
    except Exception:  # noqa: BLE001 - an event that cannot be posted must not stop the reconcile
        log.debug("event %s not posted", reason, exc_info=True)


class Reconciler:
    """One reconcile of one run: reads, decides, then writes the whole status once."""

    def __init__(self, ctx: Context, body: dict[str, Any]) -> None:
        self.ctx = ctx
        self.body = body
        self.name = body["metadata"]["name"]
        self.namespace = body["metadata"]["namespace"]
        self.generation = body["metadata"].get("generation")
        self.old = dict(body.get("status") or {})
        self.status: dict[str, Any] = {k: v for k, v in self.old.items() if k in STATUS_KEYS}
        self.conditions: list[dict[str, Any]] = list(self.old.get("conditions") or [])
        self.access: StoreAccess | None = None
        self.degraded: str | None = None

    # -- status writers
    def cond(self, type_: str, status: str, reason: str, message: str) -> None:
        self.conditions = st.set_condition(self.conditions, type_, status, reason, message, self.generation)

    async def write(self) -> None:
        if self.degraded:
            self.cond(st.DEGRADED, "True", "StoreUnreachable", self.degraded)
        elif st.condition(self.conditions, st.DEGRADED):
            self.cond(st.DEGRADED, "False", "AsExpected", "")
        self.status["conditions"] = self.conditions
        self.status["observedGeneration"] = self.generation
        patch = {"status": {**{k: None for k in self.old if k not in self.status and k in STATUS_KEYS},
                            **self.status}}
        old_owned = {k: v for k, v in self.old.items() if k in STATUS_KEYS}
        if {k: v for k, v in patch["status"].items() if v is not None} == old_owned:
            metrics.set_phase(self.namespace, self.name, self.status.get("phase"))
            return  # a resync that changed nothing writes nothing (no watch event, no churn)
        await k8s.CustomObjectsApi(self.ctx.api).patch_namespaced_custom_object_status(
            api.GROUP, api.VERSION, self.namespace, api.PLURAL, self.name, patch, _content_type=MERGE)
        metrics.set_phase(self.namespace, self.name, self.status.get("phase"))
        if self.status.get("phase") != self.old.get("phase"):
            log.info("run %s/%s: %s -> %s", self.namespace, self.name, self.old.get("phase"),
                     self.status.get("phase"))

    async def fail(self, reason: str, message: str) -> None:
        self.status.update(phase=st.FAILED, currentStep=None, progress=None)
        self.cond(st.SUCCEEDED, "False", reason, message)
        self.cond(st.PROGRESSING, "False", reason, "the run stopped")
        _event(self.body, "Warning", reason, message)
        await self.write()

    # -- store reads (best effort: an unreachable store degrades status, never blocks the plan)
    async def read_json(self, uri: str) -> object:
        if self.access is None:
            return None
        loc = locator(self.access)(uri)
        try:
            return await asyncio.to_thread(loc.read_json)
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - StorageError, S3Error, bad JSON: report, go on
            self.degraded = f"reading {uri}: {type(exc).__name__}: {exc}"
            return None

    async def outputs_verify(self, step: plan.Step) -> bool:
        if self.access is None:
            return False
        try:
            return await asyncio.to_thread(plan.step_done, step, locator(self.access))
        except Exception as exc:  # noqa: BLE001
            self.degraded = f"checking {step.name} outputs: {type(exc).__name__}: {exc}"
            return False

    # -- the walk
    async def run(self) -> None:
        meta = self.body["metadata"]
        if meta.get("deletionTimestamp"):
            return
        if self.old.get("phase") in st.FINISHED_PHASES and self.old.get("observedGeneration") == self.generation:
            return
        try:
            spec = api.parse_spec(self.body.get("spec") or {})
        except api.SpecError as exc:
            return await self.fail("InvalidSpec", str(exc))
        problems = validation.problems(spec)
        if problems:
            return await self.fail("InvalidSpec", "; ".join(problems))
        problems = await _secret_problems(self.ctx, spec, self.namespace)
        if problems:
            return await self.fail("SecretNotFound", "; ".join(problems))
        self.access = await _store_access(self.ctx, spec, self.namespace)
        root = layout.store_root(spec.storage.bucket)
        run_layout = layout.RunLayout.of(root, self.namespace, self.name)
        steps = plan.build_plan(self.name, self.namespace, spec, root)
        done: list[str] = [s for s in self.old.get("stepsDone") or [] if s in {x.name for x in steps}]
        owner = resources.Owner(self.name, self.namespace, meta["uid"])
        self._init_status(spec, run_layout)
        if not self.old.get("phase"):
            self.status["phase"] = st.PENDING
        for step in steps:
            if step.name in done:
                continue
            job = await self.read_job(naming.job_name(self.name, step.name))
            if job is None and await self.outputs_verify(step):
                done.append(step.name)
                await self.after_step(step, run_layout, "StepSkipped", "outputs already exist and verify")
                continue
            if job is None:
                manifest = resources.job_for_step(step, spec, owner, os.environ.get("KUBETUNE_S3_ENDPOINT"))
                job, created = await self.create_job(manifest)
                if created:
                    metrics.JOBS_CREATED.labels(kind=step.kind).inc()
                    _event(self.body, "Normal", "JobCreated", f"step {step.name}: Job {manifest['metadata']['name']}")
            state, reason, message = st.job_state(job)
            if state == "succeeded":
                done.append(step.name)
                self.observe_duration(step, job)
                await self.after_step(step, run_layout, "StepSucceeded", f"Job {job['metadata']['name']} succeeded")
                continue
            self.status["stepsDone"] = done
            if state == "failed":
                self.mark_stage(step, st.FAILED)
                return await self.fail(f"{step.kind.capitalize()}Failed",
                                       f"step {step.name}: Job {job['metadata']['name']} failed: {reason}"
                                       + (f": {message}" if message else ""))
            await self.running(step, run_layout, state)
            return await self.write()
        self.status["stepsDone"] = done
        await self.finish(spec, steps)

    def _init_status(self, spec: api.FineTuneRunSpec, run_layout: layout.RunLayout) -> None:
        old_stages = {s.get("name"): s for s in self.old.get("stages") or []}
        self.status["stages"] = [old_stages.get(s.name) or {"name": s.name, "phase": st.PENDING}
                                 for s in spec.stages]
        self.status["artifacts"] = {
            "root": run_layout.root,
            "datasets": {s.name: run_layout.data(s.name) for s in spec.stages},
            **{k: v for k, v in (self.old.get("artifacts") or {}).items() if k in ("adapters", "models", "finalModel")},
        }
        self.status.setdefault("evaluations", [])

    def mark_stage(self, plan_step: plan.Step, phase: str, /, **fields: Any) -> None:
        for s in self.status["stages"]:
            if s["name"] == plan_step.stage:
                s.update(phase=phase, **fields)

    async def read_job(self, name: str) -> dict[str, Any] | None:
        try:
            job = await k8s.BatchV1Api(self.ctx.api).read_namespaced_job(name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return self.ctx.api.sanitize_for_serialization(job)

    async def create_job(self, manifest: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """(the Job, whether this call created it)."""
        batch = k8s.BatchV1Api(self.ctx.api)
        try:
            created = await batch.create_namespaced_job(self.namespace, manifest)
            return self.ctx.api.sanitize_for_serialization(created), True
        except ApiException as exc:
            if exc.status != 409:
                raise
        # Already exists: a previous reconcile (or operator) created it. Adopt it, never duplicate.
        job = await self.read_job(manifest["metadata"]["name"])
        return job or manifest, False

    def observe_duration(self, step: plan.Step, job: dict[str, Any]) -> None:
        s = job.get("status") or {}
        start, end = s.get("startTime"), s.get("completionTime")
        if start and end:
            import datetime

            def parse(t: str) -> datetime.datetime:
                return datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))

            metrics.STEP_SECONDS.labels(kind=step.kind).observe((parse(end) - parse(start)).total_seconds())

    async def after_step(self, step: plan.Step, run_layout: layout.RunLayout, reason: str, message: str) -> None:
        arts = self.status["artifacts"]
        if step.kind == "train" and step.stage:
            progress = st.stage_progress(await self.read_json(run_layout.progress(step.stage)))
            self.mark_stage(step, st.PHASE_SUCCEEDED, **progress)
            arts.setdefault("adapters", {})[step.stage] = run_layout.adapter(step.stage)
            arts.setdefault("models", {})[step.stage] = run_layout.merged(step.stage)
            arts["finalModel"] = run_layout.merged(step.stage)
        elif step.kind == "evaluate" and step.label:
            if step.stage:
                self.mark_stage(step, st.PHASE_SUCCEEDED)
            uri = run_layout.report(step.label)
            results = st.suite_results(await self.read_json(uri))
            accuracy = st.mean_accuracy(results)
            entry = {"label": step.label, "report": uri, "suites": results}
            if accuracy is not None:
                entry["accuracy"] = accuracy
                self.status["accuracy"] = accuracy
            self.status["evaluations"] = [e for e in self.status["evaluations"] if e.get("label") != step.label]
            self.status["evaluations"].append(entry)
            for r in results:
                if r.get("accuracy") is not None:
                    metrics.EVAL_ACCURACY.labels(self.namespace, self.name, r["suite"]).set(r["accuracy"])
        if f"{step.name}" not in (self.old.get("stepsDone") or []):
            _event(self.body, "Normal", reason, f"step {step.name}: {message}")

    async def running(self, step: plan.Step, run_layout: layout.RunLayout, state: str) -> None:
        self.status.update(phase=st.RUNNING, currentStep=step.name, currentStage=step.stage or step.label)
        self.status["progress"] = None
        if step.kind == "prepare":
            self.mark_stage(step, "Preparing")
        elif step.kind == "train" and step.stage:
            progress = st.stage_progress(await self.read_json(run_layout.progress(step.stage)))
            self.mark_stage(step, "Training", **progress)
            if progress.get("step") is not None and progress.get("total"):
                self.status["progress"] = f"{progress['step']}/{progress['total']}"
            if progress.get("loss") is not None:
                self.status["loss"] = progress["loss"]
        elif step.kind == "evaluate" and step.stage:
            self.mark_stage(step, "Evaluating")
        what = "waiting for Kueue admission" if state == "suspended" else "running"
        self.cond(st.SUCCEEDED, "Unknown", "InProgress", f"step {step.name} {what}")
        self.cond(st.PROGRESSING, "True", "Suspended" if state == "suspended" else "StepRunning",
                  f"step {step.name} {what}")

    async def finish(self, spec: api.FineTuneRunSpec, steps: list[plan.Step]) -> None:
        final_eval = next((s for s in reversed(steps) if s.kind == "evaluate" and s.label != plan.BASE_LABEL), None)
        results = None
        if final_eval is not None:
            entry = next((e for e in self.status["evaluations"] if e.get("label") == final_eval.label), None)
            results = entry.get("suites") if entry and entry.get("suites") else None
        failures = st.gate_failures(spec.evaluation.gates, results)
        self.status.update(currentStep=None, currentStage=None, progress=None)
        if failures:
            return await self.fail("GateNotMet", "; ".join(failures))
        self.status["phase"] = st.PHASE_SUCCEEDED
        self.cond(st.SUCCEEDED, "True", "AllStepsSucceeded", f"{len(steps)} steps done")
        self.cond(st.PROGRESSING, "False", "Completed", "the run finished")
        if self.old.get("phase") != st.PHASE_SUCCEEDED:
            _event(self.body, "Normal", "RunSucceeded", f"{len(steps)} steps done")
        await self.write()


async def reconcile(ctx: Context, namespace: str, name: str) -> None:
    """Bring one run one step further (idempotent; safe to call on any trigger)."""
    lock = ctx.locks.setdefault((namespace, name), asyncio.Lock())
    async with lock:
        try:
            body = await k8s.CustomObjectsApi(ctx.api).get_namespaced_custom_object(
                api.GROUP, api.VERSION, namespace, api.PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                ctx.locks.pop((namespace, name), None)
                return
            metrics.RECONCILE_ERRORS.labels(reason=f"Http{exc.status}").inc()
            raise
        try:
            await Reconciler(ctx, body).run()
        except ApiException as exc:
            metrics.RECONCILE_ERRORS.labels(reason=f"Http{exc.status}").inc()
            raise kopf.TemporaryError(f"API error {exc.status}: {exc.reason}", delay=5) from None
        except Exception as exc:
            metrics.RECONCILE_ERRORS.labels(reason=type(exc).__name__).inc()
            raise
