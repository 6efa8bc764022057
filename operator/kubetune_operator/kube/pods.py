"""What every pod the operator builds has in common: the restricted Pod Security profile (non-root, no
privilege escalation, no capabilities, RuntimeDefault seccomp, read-only root filesystem) with writable
scratch on emptyDirs, no service-account token, the environment that points caches at that scratch, and the
placement fields (node selector, tolerations, priority class) from a resource's settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubetune_jobs.contract import env

RUN_AS = 10001  # the jobs image's user (jobs/Dockerfile)
SCRATCH = "/scratch"  # emptyDir: downloads, caches, HOME
TMP = "/tmp"


def container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"}}


def scratch_volumes(size: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, mounts) for the writable scratch and /tmp of a read-only-root container."""
    scratch: dict[str, Any] = {"sizeLimit": size} if size else {}
    volumes = [{"name": "scratch", "emptyDir": scratch}, {"name": "tmp", "emptyDir": {"sizeLimit": "8Gi"}}]
    mounts = [{"name": "scratch", "mountPath": SCRATCH}, {"name": "tmp", "mountPath": TMP}]
    return volumes, mounts


def scratch_env() -> list[dict[str, Any]]:
    """Caches and HOME on the scratch volume (the root filesystem is read-only)."""
    return [{"name": "HOME", "value": f"{SCRATCH}/home"}, {"name": "TMPDIR", "value": TMP},
            {"name": env.CACHE, "value": f"{SCRATCH}/kubetune"}, {"name": "HF_HOME", "value": f"{SCRATCH}/hf"},
            {"name": "XDG_CACHE_HOME", "value": f"{SCRATCH}/cache"}, {"name": "PYTHONUNBUFFERED", "value": "1"}]


def secret_env(name: str, secret: str, key: str | None = None) -> dict[str, Any]:
    """An env var taken from a Secret by reference (the value never enters the manifest)."""
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key or name}}}


def placement(node_selector: Mapping[str, str], tolerations: Sequence[Any], priority_class_name: str | None
              ) -> dict[str, Any]:
    """The pod spec's placement fields for a resource's scheduling settings (only those set)."""
    out: dict[str, Any] = {}
    if node_selector:
        out["nodeSelector"] = dict(node_selector)
    if tolerations:
        out["tolerations"] = [t.wire() for t in tolerations]
    if priority_class_name:
        out["priorityClassName"] = priority_class_name
    return out
