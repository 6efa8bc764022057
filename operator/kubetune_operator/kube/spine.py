"""The reconcile spine both resources share: one object at a time, read, observed, decided on, acted on.

    await reconcile_object(ctx, api.RESOURCE, metrics.FINETUNERUN, namespace, name, work)

`reconcile_object` holds the object's lock, reads it (gone: forgotten; being deleted: left to the delete
handlers), runs the kind's `work(body)` (observe -> the pure `decide` -> act -> write status), and turns an
API error into a retry after a short delay; every failure is counted in the operator's metrics by its kind.
What a kind reads before it decides, both kinds read alike here: the Secrets its spec references
(`secret_problems`) and its object store with its own credentials (`store_access`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import kopf
from kubernetes_asyncio.client.exceptions import ApiException

from kubetune_jobs.contract.env import STORE_CREDENTIALS
from kubetune_jobs.contract.store import StoreAccess, resolve

from .. import metrics
from ..apitypes import ResourceKind, StorageSpec
from . import shared_store
from . import status as status_io
from .context import Context
from .objects import Objects, text_values

RETRY_DELAY_SECONDS = 5


async def reconcile_object(ctx: Context, kind: ResourceKind, metric_kind: str, namespace: str, name: str,
                           work: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Run `work` on the object as the API server has it now (idempotent; safe to call on any trigger)."""
    async with ctx.lock(kind.kind, namespace, name):
        try:
            body = await status_io.read(ctx.api, kind, namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                ctx.forget(kind.kind, namespace, name)
                return
            metrics.reconcile_error(namespace, metric_kind, f"Http{exc.status}")
            raise
        if body["metadata"].get("deletionTimestamp"):
            return
        try:
            await work(body)
        except ApiException as exc:
            metrics.reconcile_error(namespace, metric_kind, f"Http{exc.status}")
            raise kopf.TemporaryError(f"API error {exc.status}: {exc.reason}", delay=RETRY_DELAY_SECONDS) from None
        except Exception as exc:
            metrics.reconcile_error(namespace, metric_kind, type(exc).__name__)
            raise


async def secret_problems(objects: Objects, referenced: Iterable[tuple[str, str, Iterable[str]]],
                          namespace: str) -> list[str]:
    """What is wrong with the Secrets a spec references (`(field path, Secret name, keys)`), each problem
    naming the field; empty when every Secret exists and holds its keys as text."""
    out = []
    for path, name, keys in referenced:
        data = await objects.secret(namespace, name)
        if data is None:
            out.append(f"{path}: Secret {name!r} not found in namespace {namespace!r}")
            continue
        _, problems = text_values(data, keys)
        out += [f"{path}: Secret {name!r} {p}" for p in problems]
    return out


async def store_access(ctx: Context, storage: StorageSpec, namespace: str) -> tuple[StoreAccess | None, dict[str, str]]:
    """The resource's store with its own credentials (never the operator's, unless shared on purpose), and
    the shared store's keys when it uses that store (`shared_store`; empty otherwise)."""
    objects = Objects(ctx.api)
    credentials: dict[str, str] = {}
    shared: dict[str, str] = {}
    if storage.credentials_secret:
        data = await objects.secret(namespace, storage.credentials_secret) or {}
        credentials, _ = text_values(data, STORE_CREDENTIALS)
    elif shared_store.applies(ctx.settings, storage.endpoint, None):
        credentials = shared = await shared_store.credentials(objects, ctx.settings)
    access = resolve(storage.endpoint or ctx.settings.store_endpoint, secure=storage.secure,
                     credentials=credentials, environ={})
    return access, shared
