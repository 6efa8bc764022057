"""Writing a resource's status: only the fields the operator owns, whole, and only when they changed
(a resync that changes nothing writes nothing: no watch event, no churn). kopf keeps its own
bookkeeping under status too; those keys are left alone."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client as k8s

from ..apitypes import GROUP, VERSION, ResourceKind
from .objects import MERGE


def status_patch(kind: ResourceKind, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch that turns `old`'s owned fields into `new` (owned keys it lacks are removed), or
    None when nothing would change."""
    owned = kind.status_keys
    patch = {**{k: None for k in old if k in owned and k not in new}, **{k: v for k, v in new.items() if k in owned}}
    before = {k: v for k, v in old.items() if k in owned}
    if {k: v for k, v in patch.items() if v is not None} == before:
        return None
    return {"status": patch}


async def write(api: k8s.ApiClient, kind: ResourceKind, namespace: str, name: str, old: dict[str, Any],
                new: dict[str, Any]) -> bool:
    """Patch the status subresource when it changed; whether it wrote."""
    patch = status_patch(kind, old, new)
    if patch is None:
        return False
    await k8s.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, kind.plural, name, patch, _content_type=MERGE)
    return True


async def read(api: k8s.ApiClient, kind: ResourceKind, namespace: str, name: str) -> dict[str, Any]:
    return await k8s.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, name)
