"""The chart's object store, shared with resources that name no credentials, when (and only when) the
operator is told so (`Settings.share_store`). Its keys are then copied into a Secret of the resource's own,
in its namespace and owned by it, which its pods reference; otherwise such a resource talks to the store
anonymously: the operator never lends its own keys implicitly.
"""

from __future__ import annotations

import base64
from typing import Any

from kubetune_jobs.contract import env

from .. import naming
from ..settings import Settings
from .objects import Objects, text_values
from .owner import Owner


def applies(settings: Settings, endpoint: str | None, credentials_secret: str | None) -> bool:
    """Whether a resource with this storage block uses the shared store."""
    return bool(settings.share_store and settings.store_secret and settings.namespace
                and not endpoint and not credentials_secret)


def secret_name(owner: Owner) -> str:
    return naming.dns_label(f"{owner.name}-kubetune-store")


async def credentials(objects: Objects, settings: Settings) -> dict[str, str]:
    """The shared store's keys (empty when its Secret is missing or unreadable)."""
    assert settings.namespace and settings.store_secret
    data = await objects.secret(settings.namespace, settings.store_secret) or {}
    values, _ = text_values(data, env.STORE_CREDENTIALS)
    return values


def copy(owner: Owner, values: dict[str, str]) -> dict[str, Any]:
    """The resource's own copy of the shared keys (owned: it goes when the resource goes)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": secret_name(owner), "namespace": owner.namespace,
                         "labels": {naming.LABEL_MANAGED_BY: naming.MANAGED_BY, "app.kubernetes.io/part-of": "kubetune"},
                         "ownerReferences": [owner.reference()]},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}
