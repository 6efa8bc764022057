"""Reading and writing the objects the operator owns, the same way for every kind of child.

`create_or_adopt` is the heart of idempotence: children have deterministic names, so "already exists"
(409) means a previous reconcile or operator created it, and it is adopted; but only when it is really
ours (its controller reference carries the owner's uid). A create the API server refuses for good
(400, 403, 422: invalid, forbidden, quota) raises `Refused` with the server's own message, which the
reconcilers put in the resource's status instead of retrying forever.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from .owner import Owner

MERGE = "application/merge-patch+json"
# (apiVersion, kind) -> (typed API class, method suffix); anything else goes through CustomObjectsApi.
_TYPED = {
    ("batch/v1", "Job"): (k8s.BatchV1Api, "namespaced_job"),
    ("apps/v1", "Deployment"): (k8s.AppsV1Api, "namespaced_deployment"),
    ("v1", "Service"): (k8s.CoreV1Api, "namespaced_service"),
    ("v1", "Secret"): (k8s.CoreV1Api, "namespaced_secret"),
    ("v1", "ConfigMap"): (k8s.CoreV1Api, "namespaced_config_map"),
    ("v1", "Pod"): (k8s.CoreV1Api, "namespaced_pod"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): (k8s.AutoscalingV2Api, "namespaced_horizontal_pod_autoscaler"),
}
PERMANENT = (400, 403, 404, 422)  # 404 on create: the kind (a CRD) or the namespace does not exist


class Refused(RuntimeError):
    """The API server refused to create an object; retrying the same request cannot help."""

    def __init__(self, name: str, status: int, message: str) -> None:
        super().__init__(f"{name}: the API server refused it ({status}): {message}")
        self.status = status
        self.server_message = message


class NotOurs(RuntimeError):
    """An object with the name we need exists but belongs to someone else."""


def server_message(exc: ApiException) -> str:
    """The API server's own explanation (its Status `message`), else the HTTP reason."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return str(body.get("message") or exc.reason or exc.status)


def _plural(kind: str) -> str:
    return kind.lower() + ("es" if kind.endswith("s") else "s")


class Objects:
    """Namespaced object access over one ApiClient."""

    def __init__(self, api: k8s.ApiClient) -> None:
        self.api = api

    def _typed(self, api_version: str, kind: str) -> tuple[Any, str] | None:
        entry = _TYPED.get((api_version, kind))
        return (entry[0](self.api), entry[1]) if entry else None

    def _plain(self, obj: Any) -> dict[str, Any]:
        return obj if isinstance(obj, dict) else self.api.sanitize_for_serialization(obj)

    async def read(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            typed = self._typed(api_version, kind)
            if typed:
                api, suffix = typed
                return self._plain(await getattr(api, f"read_{suffix}")(name, namespace))
            group, version = api_version.split("/")
            return await k8s.CustomObjectsApi(self.api).get_namespaced_custom_object(
                group, version, namespace, _plural(kind), name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def list(self, api_version: str, kind: str, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
        kwargs = {"label_selector": selector} if selector else {}
        typed = self._typed(api_version, kind)
        if typed:
            api, suffix = typed
            result = self._plain(await getattr(api, f"list_{suffix}")(namespace, **kwargs))
        else:
            group, version = api_version.split("/")
            result = await k8s.CustomObjectsApi(self.api).list_namespaced_custom_object(
                group, version, namespace, _plural(kind), **kwargs)
        return list(result.get("items") or [])

    async def owned(self, api_version: str, kind: str, owner: Owner, selector: str | None = None) -> list[dict[str, Any]]:
        """The objects of a kind whose controller is `owner`. The label selector narrows the listing; the
        owner's uid decides (a selector alone would also match a deleted-and-recreated owner's leftovers)."""
        return [o for o in await self.list(api_version, kind, owner.namespace, selector) if owner.owns(o)]

    async def create_or_adopt(self, manifest: dict[str, Any], owner: Owner | None = None) -> tuple[dict[str, Any], bool]:
        """(the object, whether this call created it)."""
        api_version, kind = manifest["apiVersion"], manifest["kind"]
        meta = manifest["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        try:
            typed = self._typed(api_version, kind)
            if typed:
                api, suffix = typed
                created = await getattr(api, f"create_{suffix}")(namespace, manifest)
            else:
                group, version = api_version.split("/")
                created = await k8s.CustomObjectsApi(self.api).create_namespaced_custom_object(
                    group, version, namespace, _plural(kind), manifest)
            return self._plain(created), True
        except ApiException as exc:
            if exc.status in PERMANENT:
                raise Refused(f"{kind} {namespace}/{name}", exc.status, server_message(exc)) from None
            if exc.status != 409:
                raise
        existing = await self.read(api_version, kind, namespace, name)
        if existing is None:
            return manifest, False  # deleted between the 409 and the read: the next reconcile creates it
        if owner is not None and not owner.owns(existing):
            raise NotOurs(f"{kind} {namespace}/{name} exists but is not owned by {owner.kind} {owner.name}; "
                          "delete or rename it")
        return existing, False

    async def patch(self, api_version: str, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        typed = self._typed(api_version, kind)
        if typed:
            api, suffix = typed
            return self._plain(await getattr(api, f"patch_{suffix}")(name, namespace, patch, _content_type=MERGE))
        group, version = api_version.split("/")
        return await k8s.CustomObjectsApi(self.api).patch_namespaced_custom_object(
            group, version, namespace, _plural(kind), name, patch, _content_type=MERGE)

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete (children go in the background); False when it was already gone."""
        try:
            typed = self._typed(api_version, kind)
            body = k8s.V1DeleteOptions(propagation_policy="Background")
            if typed:
                api, suffix = typed
                await getattr(api, f"delete_{suffix}")(name, namespace, body=body)
            else:
                group, version = api_version.split("/")
                await k8s.CustomObjectsApi(self.api).delete_namespaced_custom_object(
                    group, version, namespace, _plural(kind), name, body=body)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    async def secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """A Secret's data, decoded from base64 to bytes (values may be binary); None when absent."""
        secret = await self.read("v1", "Secret", namespace, name)
        if secret is None:
            return None
        out: dict[str, bytes] = {}
        for key, value in (secret.get("data") or {}).items():
            try:
                out[key] = base64.b64decode(value or "", validate=False)
            except (ValueError, TypeError):
                out[key] = b""
        for key, value in (secret.get("stringData") or {}).items():
            out.setdefault(key, str(value).encode())
        return out


def text_values(data: dict[str, bytes], keys: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """The named keys of a Secret as text, and the problems of those that are missing or not UTF-8."""
    values, problems = {}, []
    for key in keys:
        if key not in data:
            problems.append(f"lacks key {key}")
            continue
        try:
            values[key] = data[key].decode("utf-8").strip()
        except UnicodeDecodeError:
            problems.append(f"key {key} is not UTF-8 text")
    return values, problems
