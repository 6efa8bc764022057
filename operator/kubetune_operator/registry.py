"""Every kind's kopf handlers, registered into one registry with the operator's settings; plus what the
kinds share: login, startup (persistence settings, the API client), and the watch on owned Jobs (and
JobSets, when the `jobset` setting is on), which hands a changed one to the reconciler of its owner's kind.

`main.py` and the test harness both build the operator this way; importing a module registers nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from . import naming
from .apitypes import GROUP
from .finetunerun import api as ftr_api
from .finetunerun import handlers as ftr
from .kube.client import api_client, connection
from .kube.context import Context
from .modelserve import api as ms_api
from .modelserve import handlers as ms
from .settings import Settings

# kind -> the reconcile of one resource of that kind (namespace, name)
Reconcile = Callable[[Context, str, str], Awaitable[None]]
RECONCILERS: dict[str, Reconcile] = {ftr_api.KIND: ftr.reconcile_run, ms_api.KIND: ms.reconcile_serve}


def _owner(meta: dict[str, Any]) -> tuple[str, str] | None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") in RECONCILERS and \
                str(ref.get("apiVersion", "")).startswith(GROUP + "/"):
            return ref["kind"], ref["name"]
    return None


def build(settings: Settings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return connection(settings, **kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(memo: kopf.Memo, **kwargs: Any) -> None:
        op: kopf.OperatorSettings = kwargs["settings"]
        op.persistence.finalizer = naming.FINALIZER
        op.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        op.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration")
        op.posting.level = logging.WARNING  # our own events describe transitions; kopf posts only problems
        op.watching.server_timeout = settings.watch_timeout
        # A resource deleted while its resync timer is mid-reconcile: re-check the timer's exit every second,
        # not kopf's default minute, so deletion (and the cleanup finalizer) is not held up.
        op.background.cancellation_polling = 1.0
        memo.ctx = Context(api=await api_client(settings), settings=settings)

    @kopf.on.cleanup(registry=registry)
    async def cleanup_client(memo: kopf.Memo, **_: Any) -> None:
        ctx: Context | None = getattr(memo, "ctx", None)
        if ctx is not None:
            await ctx.api.close()

    jobs = {naming.LABEL_MANAGED_BY: naming.MANAGED_BY}

    @kopf.on.field("batch", "v1", "jobs", field="status.succeeded", labels=jobs, registry=registry)
    @kopf.on.field("batch", "v1", "jobs", field="status.conditions", labels=jobs, registry=registry)
    @kopf.on.field("batch", "v1", "jobs", field="spec.suspend", labels=jobs, registry=registry)
    async def job_changed(meta: dict[str, Any], namespace: str, memo: kopf.Memo, **_: Any) -> None:
        owner = _owner(meta)
        if owner:
            kind, name = owner
            await RECONCILERS[kind](memo.ctx, namespace, name)

    if settings.jobset:
        # A multi-node step's JobSet (its own Jobs are the JobSet's children, not the run's).
        @kopf.on.field("jobset.x-k8s.io", "v1alpha2", "jobsets", field="status.conditions", labels=jobs,
                       registry=registry)
        @kopf.on.field("jobset.x-k8s.io", "v1alpha2", "jobsets", field="spec.suspend", labels=jobs,
                       registry=registry)
        async def jobset_changed(meta: dict[str, Any], namespace: str, memo: kopf.Memo, **_: Any) -> None:
            await job_changed(meta=meta, namespace=namespace, memo=memo)

    ftr.register(registry, settings.resync_seconds)
    ms.register(registry, settings.resync_seconds)
    return registry
