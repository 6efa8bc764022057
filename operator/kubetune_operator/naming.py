"""Names, labels and annotations of the objects the operator creates, for every kind: deterministic,
DNS-safe, one home."""

from __future__ import annotations

import hashlib
import re

from .apitypes import GROUP

LABEL_RUN = f"{GROUP}/run"
LABEL_STEP = f"{GROUP}/step"
LABEL_KIND = f"{GROUP}/step-kind"
LABEL_STAGE = f"{GROUP}/stage"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "kubetune-operator"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
FINALIZER = f"{GROUP}/cleanup"  # kopf's finalizer, for every kind
LABEL_SERVE = f"{GROUP}/serve"
LABEL_REVISION = f"{GROUP}/revision"
ANNOTATION_STEP = f"{GROUP}/step"
ANNOTATION_MODEL = f"{GROUP}/model"
ANNOTATION_DIGEST = f"{GROUP}/model-digest"
ANNOTATION_FINGERPRINT = f"{GROUP}/fingerprint"
ANNOTATION_ATTEMPT = f"{GROUP}/attempt"  # which start of a multi-node group a Job is (0, 1, ...)
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"  # set on Indexed Jobs' pods
GROUP_REPLICATED_JOB = "node"  # the JobSet's one replicated Job: pods <jobset>-node-0-<index>

_MAX = 63  # a Job's name becomes its pods' `job-name` label value: at most 63 characters


def dns_label(text: str, limit: int = _MAX) -> str:
    """Lowercase DNS-1123 label; when too long, a short hash of the full text keeps it unique."""
    clean = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "x"
    if len(clean) <= limit:
        return clean
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{clean[: limit - 9].rstrip('-')}-{digest}"


def job_name(run: str, step: str) -> str:
    """The one name of a step's Job: the same on every reconcile, so 'already exists' means adopt."""
    return dns_label(f"{run}-{step}")


# An Indexed Job's pods are named and DNS-addressed `<job>-<index>` (at most 63 characters): room for the
# index and an attempt suffix. A JobSet's pods are `<jobset>-node-0-<index>`.
_GROUP_MAX = 52


def _dns1035(name: str) -> str:
    # Service names (a group's DNS subdomain) must start with a letter; run names may start with a digit.
    return name if name[:1].isalpha() else f"g-{name}"[:_GROUP_MAX].rstrip("-")


def group_job_name(run: str, step: str, attempt: int = 0) -> str:
    """The Indexed Job of a multi-node step's `attempt`-th start (the group restarts under a new name)."""
    return dns_label(f"{run}-{step}", _GROUP_MAX) + (f"-r{attempt}" if attempt else "")


def group_service_name(run: str, step: str) -> str:
    """The headless Service that gives a multi-node step's pods their DNS names (every attempt's)."""
    return _dns1035(dns_label(f"{run}-{step}", _GROUP_MAX))


def jobset_name(run: str, step: str) -> str:
    """The JobSet of a multi-node step (it restarts its own Jobs, so one name serves every attempt)."""
    return _dns1035(dns_label(f"{run}-{step}", _GROUP_MAX))


def labels(run: str, step: str | None = None, kind: str | None = None, stage: str | None = None) -> dict[str, str]:
    out = {LABEL_MANAGED_BY: MANAGED_BY, "app.kubernetes.io/part-of": "kubetune", LABEL_RUN: dns_label(run)}
    if step:
        out[LABEL_STEP] = dns_label(step)
    if kind:
        out[LABEL_KIND] = kind
    if stage:
        out[LABEL_STAGE] = dns_label(stage)
    return out


def serve_labels(serve: str) -> dict[str, str]:
    """The labels of every object a ModelServe owns."""
    return {LABEL_MANAGED_BY: MANAGED_BY, "app.kubernetes.io/part-of": "kubetune", LABEL_SERVE: dns_label(serve)}
