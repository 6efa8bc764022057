"""Would an API server take this status? For tests of the pure reconcile decisions, without a cluster: the
same checks the strict test cluster makes on a write to the status subresource (`apiserver`)."""

from __future__ import annotations

import copy
import json
from typing import Any

import kmock

from kubetune_operator.apitypes import API_VERSION, GROUP, VERSION, ResourceKind

from . import apiserver
from .kmock_cluster import crd_schemas


def written_status(kind: ResourceKind, status: dict[str, Any], spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the API server keeps of `status` written to an existing resource of `kind`: the status as stored,
    defaults aside (so a field it prunes is missing). Raises `apiserver.Refused` where it refuses the write
    whole (400 for a number JSON cannot carry, 422 for a value the CRD does not allow)."""
    schema = crd_schemas()[kmock.resource(GROUP, VERSION, kind.plural)]
    old = {"apiVersion": API_VERSION, "kind": kind.kind, "metadata": {"name": "x", "namespace": "default"},
           "spec": copy.deepcopy(spec or {})}
    body = apiserver.decode(json.dumps({"status": status}, allow_nan=True).encode())
    new = {**copy.deepcopy(old), "status": body["status"]}
    schema.admit(new, old)
    return apiserver.prune(schema.schema, new)["status"]


def assert_written_whole(kind: ResourceKind, status: dict[str, Any]) -> None:
    """The merge patch a reconcile sends with `status` is accepted and nothing of it is pruned."""
    sent = apiserver.merge_patch({}, status)
    kept = written_status(kind, sent)
    assert kept == sent, f"the API server would prune part of the status: sent {sent}, kept {kept}"
