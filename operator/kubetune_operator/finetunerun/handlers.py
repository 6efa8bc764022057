"""FineTuneRun's kopf handlers: thin. They observe (the run, its Jobs, the store), call the pure decision
(`reconcile.decide`), and act on it (create Jobs, post events, write status, record metrics).

A run is reconciled when it is created, resumed or edited, when one of its Jobs changes, and on a
resync timer while unfinished. Deleting a run with `cleanupPolicy: Delete` stops its Jobs first (their
pods gone, so no SIGTERM checkpoint can write after), then deletes its artifacts; a store that stays
unreachable is given up on after a few attempts and never blocks the deletion. Any deletion drops the
run's metric series and deletes the groups its Jobs pushed to the Pushgateway.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from kubernetes_asyncio.client.exceptions import ApiException

from kubetune_jobs import storage
from kubetune_jobs.contract import metrics as m
from kubetune_jobs.contract import records
from kubetune_jobs.contract.env import STORE_CREDENTIALS
from kubetune_jobs.contract.layout import RunLayout, store_root
from kubetune_jobs.contract.store import StoreAccess, StoreConfigError, resolve

from .. import metrics, naming
from ..kube import shared_store
from ..kube import status as status_io
from ..kube.context import Context
from ..kube.events import Event, post
from ..kube.jobs import FAILED, SUCCEEDED, JobView, attempt_of
from ..kube.objects import NotOurs, Objects, Refused, text_values
from ..kube.owner import Owner
from . import api, group, plan, reconcile, validation

log = logging.getLogger(__name__)
KIND = api.RESOURCE


# ---------------------------------------------------------------- observing

async def _secret_problems(objects: Objects, spec: api.FineTuneRunSpec, namespace: str) -> list[str]:
    out = []
    for path, name, keys in validation.referenced_secrets(spec):
        data = await objects.secret(namespace, name)
        if data is None:
            out.append(f"{path}: Secret {name!r} not found in namespace {namespace!r}")
            continue
        _, problems = text_values(data, keys)
        out += [f"{path}: Secret {name!r} {p}" for p in problems]
    return out


async def store_access(ctx: Context, spec: api.FineTuneRunSpec, namespace: str) -> StoreAccess | None:
    """The run's store with the run's own credentials (never the operator's, unless shared on purpose)."""
    credentials: dict[str, str] = {}
    objects = Objects(ctx.api)
    if spec.storage.credentials_secret:
        data = await objects.secret(namespace, spec.storage.credentials_secret) or {}
        credentials, _ = text_values(data, STORE_CREDENTIALS)
    elif shared_store.applies(ctx.settings, spec.storage.endpoint, None):
        credentials = await shared_store.credentials(objects, ctx.settings)
    return resolve(spec.storage.endpoint or ctx.settings.store_endpoint, secure=spec.storage.secure,
                   credentials=credentials, environ={})


class _Store:
    """Store reads for one reconcile; a failure degrades status and never blocks the plan."""

    def __init__(self, access: StoreAccess | None) -> None:
        self.access = access
        self.error: str | None = None

    def locate(self, uri: str) -> storage.Location:
        return storage.location(uri, self.access)

    async def verified(self, step: plan.Step) -> bool:
        if self.access is None:
            return False
        try:
            return await asyncio.to_thread(plan.step_done, step, self.locate)
        except Exception as exc:  # noqa: BLE001 - StorageError, S3Error, bad JSON: report, go on
            self.error = f"checking {step.name} outputs: {type(exc).__name__}: {exc}"
            return False

    async def record(self, uri: str, record: type[records.R]) -> records.R | None:
        if self.access is None:
            return None
        try:
            return records.read(record, await asyncio.to_thread(self.locate(uri).read_bytes))
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001
            self.error = f"reading {uri}: {type(exc).__name__}: {exc}"
            return None


async def observe(ctx: Context, body: dict[str, Any]) -> reconcile.Observed:
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    obs = reconcile.Observed(name=name, generation=meta.get("generation"), status=dict(body.get("status") or {}))
    if reconcile.settled(obs.status, obs.generation):
        return obs
    try:
        spec = api.parse_spec(body.get("spec") or {})
    except api.SpecError as exc:
        obs.problems = [str(exc)]
        return obs
    obs.spec = spec
    obs.problems = validation.problems(spec)
    if obs.problems:
        return obs
    objects = Objects(ctx.api)
    obs.problems = await _secret_problems(objects, spec, namespace)
    if obs.problems:
        obs.problem_reason = "SecretNotFound"
        return obs
    root = store_root(spec.storage.bucket)
    layout = RunLayout.of(root, namespace, name)
    obs.plan = plan.build_plan(name, namespace, spec, root, uid=meta["uid"], pushgateway=ctx.settings.pushgateway)
    obs.layout_root = layout.root
    obs.datasets = {s.name: layout.data(s.name) for s in spec.stages}
    obs.models = plan.stage_models(layout, spec)
    obs.queued = bool(spec.resources.kueue_queue)
    obs.jobset = ctx.settings.jobset
    owner = Owner(api.KIND, name, namespace, meta["uid"])
    by_step = await _workloads(objects, owner, ctx.settings.jobset)
    done = set(obs.status.get("stepsDone") or [])
    try:
        store = _Store(await store_access(ctx, spec, namespace))
    except StoreConfigError as exc:
        obs.problems = [f"spec.storage.endpoint: {exc}"]
        return obs
    open_ = True  # outputs are checked up to the first step that is neither done nor verified
    for step in obs.plan:
        if step.name in done:
            continue
        job = by_step.get(step.name)
        if job is not None:
            obs.jobs[step.name] = view = JobView.of(job)
            open_ = open_ and view.state == SUCCEEDED
        elif open_:
            obs.verified[step.name] = await store.verified(step)
            open_ = obs.verified[step.name]
        if job is None and not obs.verified.get(step.name):
            continue
        if step.kind == "train" and step.stage:
            obs.progress[step.stage] = await store.record(layout.progress(step.stage), records.Progress)
        elif step.kind == "evaluate" and step.label:
            uri = layout.report(step.label)
            obs.reports[step.label] = (uri, await store.record(uri, records.ReportSummary))
    obs.store_error = store.error
    return obs


async def _workloads(objects: Objects, owner: Owner, use_jobset: bool) -> dict[str, dict[str, Any]]:
    """step name -> the run's newest workload of that step (a Job, the latest start of a multi-node group,
    or a JobSet), by the step annotation every one carries."""
    selector = f"{naming.LABEL_RUN}={naming.dns_label(owner.name)}"
    found = list(await objects.owned("batch/v1", "Job", owner, selector))
    if use_jobset:
        found += await objects.owned(group.JOBSET_API_VERSION, group.JOBSET_KIND, owner, selector)
    out: dict[str, dict[str, Any]] = {}
    for obj in found:
        step = ((obj["metadata"].get("annotations") or {}).get(naming.ANNOTATION_STEP))
        if step and (step not in out or attempt_of(obj) >= attempt_of(out[step])):
            out[step] = obj
    return out


# ---------------------------------------------------------------- acting

async def _create_jobs(ctx: Context, body: dict[str, Any], obs: reconcile.Observed,
                       decision: reconcile.Decision) -> reconcile.Decision:
    meta = body["metadata"]
    owner = Owner(api.KIND, meta["name"], meta["namespace"], meta["uid"])
    objects = Objects(ctx.api)
    assert obs.spec is not None
    shared = None
    if shared_store.applies(ctx.settings, obs.spec.storage.endpoint, obs.spec.storage.credentials_secret):
        await objects.create_or_adopt(shared_store.copy(owner, await shared_store.credentials(objects, ctx.settings)),
                                      owner)
        shared = shared_store.secret_name(owner)
    for step in decision.create:
        manifests = group.manifests_for_step(step, obs.spec, owner, ctx.settings.store_endpoint, shared,
                                             jobs_image=ctx.settings.jobs_image,
                                             attempt=decision.attempts.get(step.name, 0),
                                             use_jobset=ctx.settings.jobset)
        for manifest in manifests:  # the Service before the Job whose pods it names; the workload last
            kind, job_name = manifest["kind"], manifest["metadata"]["name"]
            try:
                created, new = await objects.create_or_adopt(manifest, owner)
            except (Refused, NotOurs) as exc:
                # Retrying the same object cannot help: the step fails with the API server's own words.
                obs.jobs[step.name] = JobView(job_name, FAILED, "JobRefused", str(exc))
                return reconcile.decide(obs)
            if new:
                post(body, Event("Normal", "JobCreated" if kind in ("Job", group.JOBSET_KIND) else f"{kind}Created",
                                 f"step {step.name}: {kind} {job_name}"))
        obs.jobs[step.name] = JobView.of(created)
        if new:
            metrics.job_created(owner.namespace, step.kind)
    return decision


async def reconcile_run(ctx: Context, namespace: str, name: str) -> None:
    """Bring one run one step further (idempotent; safe to call on any trigger)."""
    async with ctx.lock(api.KIND, namespace, name):
        try:
            body = await status_io.read(ctx.api, KIND, namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                ctx.forget(api.KIND, namespace, name)
                return
            metrics.reconcile_error(namespace, metrics.FINETUNERUN, f"Http{exc.status}")
            raise
        if body["metadata"].get("deletionTimestamp"):
            return
        try:
            obs = await observe(ctx, body)
            decision = reconcile.decide(obs)
            if decision.create:
                decision = await _create_jobs(ctx, body, obs, decision)
            await _apply(ctx, body, decision)
        except ApiException as exc:
            metrics.reconcile_error(namespace, metrics.FINETUNERUN, f"Http{exc.status}")
            raise kopf.TemporaryError(f"API error {exc.status}: {exc.reason}", delay=5) from None
        except Exception as exc:
            metrics.reconcile_error(namespace, metrics.FINETUNERUN, type(exc).__name__)
            raise
        _record(namespace, name, dict(body.get("status") or {}), decision.status)


async def _apply(ctx: Context, body: dict[str, Any], decision: reconcile.Decision) -> None:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    status = decision.status
    if status is None:
        return
    for step, job in decision.finished:
        metrics.step_finished(namespace, step.kind, job.seconds, job.wait_seconds)
    latest = status.evaluations[-1].suites if status.evaluations else []
    metrics.eval_accuracy(namespace, name, {r.suite: r.accuracy for r in latest if r.accuracy is not None})
    for event in decision.events:
        post(body, event)
    old = dict(body.get("status") or {})
    await status_io.write(ctx.api, KIND, namespace, name, old, status.wire())
    if status.phase != old.get("phase"):
        log.info("run %s/%s: %s -> %s", namespace, name, old.get("phase"), status.phase)


def _record(namespace: str, name: str, old: dict[str, Any], new: api.FineTuneRunStatus | None) -> None:
    """The run's phase, why it failed, and whether it moved (a step done, a training step logged)."""
    status = new if new is not None else api.FineTuneRunStatus.read(old)
    reason = next((c.reason for c in status.conditions if c.type == "Succeeded"), None)
    moved = (tuple(status.steps_done), tuple((s.name, s.phase, s.step) for s in status.stages))
    metrics.run_seen(namespace, name, status.phase, old.get("phase"), reason, moved)


# ---------------------------------------------------------------- deletion

async def _stop_jobs(ctx: Context, owner: Owner, timeout: float) -> None:
    """Delete the run's Jobs and wait until they (and so their pods) are gone."""
    objects = Objects(ctx.api)
    kinds = [("batch/v1", "Job")] + ([(group.JOBSET_API_VERSION, group.JOBSET_KIND)] if ctx.settings.jobset else [])

    async def remaining() -> list[tuple[str, str, str]]:
        return [(v, k, o["metadata"]["name"]) for v, k in kinds for o in await objects.owned(v, k, owner)]

    for api_version, kind, name in await remaining():
        await objects.delete(api_version, kind, owner.namespace, name)
    deadline = asyncio.get_running_loop().time() + timeout
    while await remaining():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"the run's Jobs were still terminating after {timeout:.0f} s")
        await asyncio.sleep(1.0)


async def delete_artifacts(ctx: Context, body: dict[str, Any], spec: dict[str, Any], retry: int) -> None:
    """Remove the run's artifacts; after `cleanup_attempts` failures give up (warning event), never block."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    settings = ctx.settings
    metrics.forget_run(namespace, name)
    try:
        parsed = api.parse_spec(dict(spec))
    except api.SpecError:
        return  # an invalid run never produced artifacts
    root = RunLayout.of(store_root(parsed.storage.bucket), namespace, name).root
    try:
        await _stop_jobs(ctx, Owner(api.KIND, name, namespace, meta["uid"]), settings.cleanup_timeout)
        access = await store_access(ctx, parsed, namespace)
        if access is None:
            raise RuntimeError("no object store endpoint configured")
        await asyncio.wait_for(asyncio.to_thread(lambda: storage.location(root, access).delete()),
                               settings.cleanup_timeout)
    except Exception as exc:  # noqa: BLE001 - any store failure is retried a bounded number of times
        reason = f"{type(exc).__name__}: {exc}"
        if retry + 1 < settings.cleanup_attempts:
            raise kopf.TemporaryError(f"deleting {root} failed (attempt {retry + 1}/{settings.cleanup_attempts}): "
                                      f"{reason}", delay=settings.cleanup_delay) from None
        metrics.reconcile_error(namespace, metrics.FINETUNERUN, "CleanupAbandoned")
        kopf.warn(body, reason="CleanupAbandoned",
                  message=f"gave up deleting {root} after {settings.cleanup_attempts} attempts: {reason}")
        return
    kopf.info(body, reason="ArtifactsDeleted", message=f"deleted {root}")


# ---------------------------------------------------------------- registration

def _unfinished(status: dict[str, Any], **_: Any) -> bool:
    return (status or {}).get("phase") not in reconcile.FINISHED_PHASES


def _cleanup_wanted(spec: dict[str, Any], **_: Any) -> bool:
    return (spec or {}).get("cleanupPolicy") == "Delete"


def register(registry: kopf.OperatorRegistry, resync_seconds: float) -> None:
    """FineTuneRun's handlers, registered into `registry` (the Jobs' own watch is shared: `owned_jobs`)."""
    group, version, plural = api.GROUP, api.VERSION, api.PLURAL

    @kopf.on.resume(group, version, plural, registry=registry)
    @kopf.on.create(group, version, plural, registry=registry)
    @kopf.on.update(group, version, plural, field="spec", registry=registry)
    async def run_changed(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
        await reconcile_run(memo.ctx, namespace, name)

    @kopf.timer(group, version, plural, interval=resync_seconds, initial_delay=resync_seconds, when=_unfinished,
                registry=registry)
    async def resync(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
        """Refresh training progress and catch any Job change a watch missed."""
        await reconcile_run(memo.ctx, namespace, name)

    @kopf.on.delete(group, version, plural, optional=True, registry=registry)
    async def forget(name: str, namespace: str, spec: dict[str, Any], memo: kopf.Memo, **_: Any) -> None:
        """Drop the run's metric series, its groups in the Pushgateway and its lock (optional: adds no
        finalizer of its own)."""
        metrics.forget_run(namespace, name)
        gateway = (spec or {}).get("pushgateway") or memo.ctx.settings.pushgateway
        await metrics.forget_pushed(gateway, lambda group: m.run_owns(group, namespace, name), f"run {namespace}/{name}")
        memo.ctx.forget(api.KIND, namespace, name)

    @kopf.on.delete(group, version, plural, when=_cleanup_wanted, registry=registry)
    async def cleanup(body: kopf.Body, spec: dict[str, Any], retry: int, memo: kopf.Memo, **_: Any) -> None:
        await delete_artifacts(memo.ctx, dict(body), spec, retry)
