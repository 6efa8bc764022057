"""ModelServe's kopf handlers: thin. They observe (the ModelServe, the FineTuneRun it follows, its
Deployments and Jobs, the model's completeness marker and the results in the store), call the pure
decision (`reconcile.decide`), and act on it (apply and delete objects, post events, write status).

A ModelServe is reconciled when it is created, resumed or edited, when one of its Deployments or Jobs
changes, when the FineTuneRun it follows changes phase, and on a resync timer (serving never finishes).
Deleting it deletes everything it owns, a revision under evaluation included, drops its metric series
and deletes the groups its benchmark and evaluation Jobs pushed to the Pushgateway.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from kubetune_jobs.contract import locations, records
from kubetune_jobs.contract import metrics as m
from kubetune_jobs.contract.layout import COMPLETE_MARKER, COMPLETE_MARKER_MAX_BYTES, ServeLayout, join
from kubetune_jobs.contract.store import StoreAccess, StoreConfigError

from .. import metrics, naming
from ..apitypes import GROUP, VERSION
from ..finetunerun import api as ftr_api
from ..kube import shared_store, spine
from ..kube import status as status_io
from ..kube.conditions import now
from ..kube.context import Context
from ..kube.events import post
from ..kube.jobs import SUCCEEDED, JobView
from ..kube.objects import NotOurs, Objects, Refused
from ..kube.owner import Owner
from . import adapters, api, promotion, reconcile, resources, source, validation

log = logging.getLogger(__name__)
KIND = api.RESOURCE
CHILDREN = (("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap"), ("batch/v1", "Job"), ("v1", "Secret"))
OPTIONAL_CHILDREN = (("monitoring.coreos.com/v1", "PodMonitor"), ("keda.sh/v1alpha1", "ScaledObject"),
                     ("autoscaling/v2", "HorizontalPodAutoscaler"))


class _Reads:
    """Store reads of one reconcile, each no larger than its kind's cap; a failure is reported (Degraded),
    never fatal. A model's marker over its cap makes the model unusable (`unusable`), not the store."""

    def __init__(self, access: StoreAccess | None) -> None:
        self.access = access
        self.error: str | None = None
        self.unusable: dict[str, str] = {}  # model directory -> why its marker cannot be used

    async def _get(self, uri: str, limit: int) -> tuple[bytes | None, str | None]:
        """The object's bytes, at most `limit` of them (None when absent), or why it could not be read. TooLarge
        propagates: what an object over its cap means depends on what it is."""
        if self.access is None and uri.startswith("s3://"):
            return None, f"reading {uri}: no object store endpoint configured (spec.storage.endpoint)"
        try:
            return await asyncio.to_thread(locations.location(uri, self.access).read_bytes, limit), None
        except FileNotFoundError:
            return None, None
        except locations.TooLarge:
            raise
        except Exception as exc:  # noqa: BLE001 - StorageError, S3Error: report, go on
            return None, f"reading {uri}: {type(exc).__name__}: {exc}"

    async def marker(self, directory: str) -> bytes | None:
        """The completeness marker of a model directory, or None (absent, unusable or unreadable)."""
        try:
            data, error = await self._get(join(directory, COMPLETE_MARKER), COMPLETE_MARKER_MAX_BYTES)
        except locations.TooLarge as exc:
            self.unusable[directory] = str(exc)
            return None
        self.error = error or self.error
        return data

    async def evidence(self, uri: str, record: type[records.R]) -> promotion.Evidence:
        """A report or a benchmark as the gate takes it: its bytes (at most its kind's cap), None when absent,
        or why it could not be read (its being over the cap included: unread, never parsed)."""
        try:
            data, error = await self._get(uri, record.max_bytes)
        except locations.TooLarge as exc:
            return promotion.Unreadable(str(exc))
        if error:
            self.error = error
            return promotion.Unreadable(error)
        return data


async def observe(ctx: Context, body: dict[str, Any]) -> reconcile.Observed:
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    obs = reconcile.Observed(name=name, namespace=namespace, generation=meta.get("generation"),
                             status=api.RESOURCE.parse_status(body.get("status")), now=now())
    try:
        manifest = api.RESOURCE.parse_manifest({"apiVersion": api.API_VERSION, "kind": api.KIND,
                                       "metadata": {"name": name, "namespace": namespace},
                                       "spec": body.get("spec") or {}})
    except api.SpecError as exc:
        obs.problems = [str(exc)]
        return obs
    spec = manifest.spec
    obs.spec = spec
    objects = Objects(ctx.api)
    owner = Owner(api.KIND, name, namespace, meta["uid"])
    settings = ctx.settings
    groups = await ctx.api_groups()
    obs.pod_monitors, obs.keda = "monitoring.coreos.com" in groups, "keda.sh" in groups
    selector = f"{naming.LABEL_SERVE}={naming.dns_label(name)}"
    for dep in await objects.owned("apps/v1", "Deployment", owner, selector):
        if (dep["metadata"].get("labels") or {}).get(resources.COMPONENT) == resources.PROBE_COMPONENT:
            continue  # the live probe's, not a revision's
        view = reconcile.DeploymentView.of(dep)
        obs.deployments[view.revision] = view
    for job in await objects.owned("batch/v1", "Job", owner, selector):
        view = JobView.of(job)
        obs.jobs[view.name] = view
    obs.problems = validation.problems(spec)
    if not obs.problems:
        obs.problems = await spine.secret_problems(objects, validation.referenced_secrets(spec), namespace)
        obs.problem_reason = "SecretNotFound" if obs.problems else obs.problem_reason
    try:
        access, shared = await spine.store_access(ctx, spec.storage, namespace)
    except StoreConfigError as exc:
        obs.problems.append(f"spec.storage.endpoint: {exc}")
        return obs
    reads = _Reads(access)
    obs.build = resources.Build(owner=owner, served_name=manifest.served_name(), jobs_image=settings.jobs_image,
                                vllm_image=spec.vllm.image or settings.vllm_image,
                                store_endpoint=settings.store_endpoint, pushgateway=settings.pushgateway,
                                prometheus=settings.prometheus,
                                shared_secret=shared_store.secret_name(owner) if shared else None)
    if shared:
        obs.shared_copy = shared_store.copy(owner, shared)
    if obs.problems:
        return obs
    run = None
    if spec.model.fine_tune_run is not None:
        run = await objects.read(ftr_api.API_VERSION, ftr_api.KIND, namespace, spec.model.fine_tune_run.name)
    resolved = source.resolve(spec, run)
    if isinstance(resolved, tuple):
        target, where = resolved
        markers = {uri: await reads.marker(uri) for uri in (where.model_uri, where.adapter_uri) if uri}
        resolved = source.with_markers(target, where, markers, reads.unusable) if not reads.error else \
            source.Waiting("StoreUnreachable", f"cannot read the model's completeness marker: {reads.error}")
    obs.resolution = resolved
    if isinstance(resolved, source.Target):
        obs.desired = source.revision(spec, resolved, obs.build.served_name, obs.build.vllm_image)
    layout = resources.results_layout(spec, namespace, name)
    for revision in obs.deployments:
        if obs.jobs.get(resources.bench_job_name(name, revision), JobView("", "")).state == SUCCEEDED:
            obs.bench[revision] = await reads.evidence(layout.bench_file(revision), records.BenchReport)
        if obs.jobs.get(resources.gate_job_name(name, revision, spec.promotion), JobView("", "")).state == SUCCEEDED:
            obs.reports[revision] = await reads.evidence(layout.report(revision), records.ReportSummary)
    if spec.adapters and isinstance(resolved, source.Target):
        await _observe_adapters(obs, objects, reads, spec, resolved, layout)
    if spec.monitoring.probe.enabled:
        probed = {x.revision for x in (obs.status.model, obs.status.watch) if x is not None}
        for revision in sorted(probed & set(obs.deployments)):
            obs.probes[revision] = await reads.evidence(layout.probe_file(revision), records.ProbeReport)
    obs.store_error = reads.error
    return obs


async def _observe_adapters(obs: reconcile.Observed, objects: Objects, reads: _Reads, spec: api.ModelServeSpec,
                            base: source.Target, layout: ServeLayout) -> None:
    """Each adapter resolved (its run, its marker), and the report of every Ready pod of the serving revision."""
    found: list[adapters.Resolution] = []
    for i, a in enumerate(spec.adapters):
        run = None
        if a.fine_tune_run is not None:
            run = await objects.read(ftr_api.API_VERSION, ftr_api.KIND, obs.namespace, a.fine_tune_run.name)
        r = adapters.locate(spec, i, run, base)
        if isinstance(r, adapters.Located):
            before = reads.error
            reads.error = None
            marker = await reads.marker(r.uri)
            if reads.error:  # unknown is not absent: a store outage must not unload what serves
                r = source.Waiting("StoreUnreachable", f"adapter {a.name!r}: {reads.error}")
            else:
                r = adapters.with_marker(r, marker, reads.unusable.get(r.uri))
            reads.error = reads.error or before
        found.append(r)
    obs.adapters = found
    serving = obs.status.model.revision if obs.status.model is not None else None
    if serving not in obs.deployments:
        return
    want = {naming.LABEL_SERVE: naming.dns_label(obs.name), naming.LABEL_REVISION: serving}
    selector = ",".join(f"{k}={v}" for k, v in want.items())
    for pod in await objects.list("v1", "Pod", obs.namespace, selector):
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in want.items()) or not _pod_ready(pod):
            continue
        name = pod["metadata"]["name"]
        data = await reads.evidence(layout.adapter_replica(name), records.ReplicaAdapters)
        obs.adapter_reports[name] = records.read(records.ReplicaAdapters, data) if isinstance(data, bytes) else None


def _pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return not (pod.get("metadata") or {}).get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions if isinstance(c, dict))


def _differs(desired: Any, existing: Any) -> bool:
    """Whether `existing` lacks anything `desired` says (server-side defaults in `existing` are fine)."""
    if isinstance(desired, dict):
        return not isinstance(existing, dict) or any(_differs(v, existing.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return (not isinstance(existing, list) or len(desired) != len(existing)
                or any(_differs(d, e) for d, e in zip(desired, existing, strict=True)))
    return desired != existing


async def _act(ctx: Context, body: dict[str, Any], decision: reconcile.Decision) -> str | None:
    """Apply and delete; the API server's refusal of an object, if any (it goes into the status)."""
    meta = body["metadata"]
    owner = Owner(api.KIND, meta["name"], meta["namespace"], meta["uid"])
    objects = Objects(ctx.api)
    for manifest in decision.apply:
        av, kind, name = manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"]
        try:
            existing, created = await objects.create_or_adopt(manifest, owner)
        except (Refused, NotOurs) as exc:
            return str(exc)
        if created:
            log.info("modelserve %s/%s: created %s %s", owner.namespace, owner.name, kind, name)
            continue
        if kind == "Job":
            continue  # a Job's template is immutable; the next revision gets a Job of its own
        patch = {k: manifest[k] for k in ("spec", "data") if k in manifest}
        patch["metadata"] = {k: manifest["metadata"][k] for k in ("labels", "annotations") if k in manifest["metadata"]}
        if _differs(patch, existing):
            await objects.patch(av, kind, owner.namespace, name, patch)
    for av, kind, name in decision.delete:
        if await objects.delete(av, kind, owner.namespace, name):
            log.info("modelserve %s/%s: deleted %s %s", owner.namespace, owner.name, kind, name)
    return None


async def reconcile_serve(ctx: Context, namespace: str, name: str) -> None:
    """Bring one ModelServe one move further (idempotent; safe to call on any trigger)."""

    async def work(body: dict[str, Any]) -> None:
        obs = await observe(ctx, body)
        decision = reconcile.decide(obs)
        if obs.shared_copy is not None and decision.apply:
            decision.apply.insert(0, obs.shared_copy)  # before the pods that reference it
        refused = await _act(ctx, body, decision)
        if refused:
            obs.problems, obs.problem_reason = [refused], "ObjectRefused"
            decision = reconcile.decide(obs)
        for event in decision.events:
            post(body, event)
        await status_io.write(ctx.api, KIND, namespace, name, dict(body.get("status") or {}),
                              decision.status.wire())
        _record(namespace, name, obs, decision.status)

    await spine.reconcile_object(ctx, KIND, metrics.MODELSERVE, namespace, name, work)


def _record(namespace: str, name: str, obs: reconcile.Observed, status: api.ModelServeStatus) -> None:
    """Ready or not, the serving revision's ready replicas and the decisions new in its history."""
    new = [(e.decision, e.reason) for e in status.history if e not in obs.status.history]
    ready = any(c.type == reconcile.READY and c.status == "True" for c in status.conditions)
    model_name = obs.build.served_name if obs.build is not None else name
    metrics.serve_seen(namespace, name, model_name, ready, status.ready_replicas, new)
    metrics.adapters_seen(namespace, name, {a.name: (a.state == "Ready", len(a.replicas)) for a in status.adapters})


async def delete_children(ctx: Context, body: dict[str, Any]) -> None:
    """Everything the ModelServe owns goes with it (owner references do the same in a cluster; doing it here
    does not wait for the garbage collector, and covers a candidate mid-evaluation)."""
    meta = body["metadata"]
    owner = Owner(api.KIND, meta["name"], meta["namespace"], meta["uid"])
    objects = Objects(ctx.api)
    groups = await ctx.api_groups()
    kinds = [*CHILDREN, *(c for c in OPTIONAL_CHILDREN if c[0].split("/")[0] in groups or c[0] == "autoscaling/v2")]
    for av, kind in kinds:
        for obj in await objects.owned(av, kind, owner):
            await objects.delete(av, kind, owner.namespace, obj["metadata"]["name"])
    metrics.forget_serve(owner.namespace, owner.name)
    await metrics.forget_pushed(ctx.settings.pushgateway, lambda group: m.serve_owns(group, owner.namespace, owner.name),
                                f"modelserve {owner.namespace}/{owner.name}")
    ctx.forget(api.KIND, owner.namespace, owner.name)


def register(registry: kopf.OperatorRegistry, resync_seconds: float) -> None:
    plural = api.PLURAL

    @kopf.on.resume(GROUP, VERSION, plural, registry=registry)
    @kopf.on.create(GROUP, VERSION, plural, registry=registry)
    @kopf.on.update(GROUP, VERSION, plural, field="spec", registry=registry)
    async def serve_changed(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
        await reconcile_serve(memo.ctx, namespace, name)

    @kopf.timer(GROUP, VERSION, plural, interval=resync_seconds, initial_delay=resync_seconds, registry=registry)
    async def resync(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
        await reconcile_serve(memo.ctx, namespace, name)

    @kopf.on.delete(GROUP, VERSION, plural, registry=registry)
    async def deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        await delete_children(memo.ctx, dict(body))

    labels = {naming.LABEL_MANAGED_BY: naming.MANAGED_BY}

    @kopf.on.field("apps", "v1", "deployments", field="status", labels=labels, registry=registry)
    async def deployment_changed(meta: dict[str, Any], namespace: str, memo: kopf.Memo, **_: Any) -> None:
        for ref in meta.get("ownerReferences") or []:
            if KIND.owns(ref) and ref.get("controller"):
                await reconcile_serve(memo.ctx, namespace, ref["name"])

    @kopf.on.field(GROUP, VERSION, ftr_api.PLURAL, field="status.phase", registry=registry)
    async def run_phase_changed(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
        """A FineTuneRun finished (or failed): the ModelServes that follow it look again."""
        ctx: Context = memo.ctx
        for serve in await Objects(ctx.api).list(api.API_VERSION, api.KIND, namespace):
            ref = ((serve.get("spec") or {}).get("model") or {}).get("fineTuneRun") or {}
            if ref.get("name") == name:
                await reconcile_serve(ctx, namespace, serve["metadata"]["name"])
