"""Pure builders: a plan Step -> a batch/v1 Job manifest (a plain dict, ready for the API).

Secrets are referenced, never read: the Job's env points at the run's credentials Secret
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and hub-token Secret (HF_TOKEN) by secretKeyRef.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import api, naming
from .plan import Step

JOB_CONTAINER = "kubetune-job"
SHM_SIZE = "16Gi"  # torch DataLoader workers and NCCL use /dev/shm; the default 64Mi is far too small


@dataclass(frozen=True)
class Owner:
    """The FineTuneRun a Job belongs to (its owner reference)."""

    name: str
    namespace: str
    uid: str


def owner_reference(owner: Owner) -> dict[str, Any]:
    return {"apiVersion": api.API_VERSION, "kind": api.KIND, "name": owner.name, "uid": owner.uid,
            "controller": True, "blockOwnerDeletion": True}


def _env(spec: api.FineTuneRunSpec, store_endpoint: str | None) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    endpoint = spec.storage.endpoint or store_endpoint
    if endpoint:
        if "://" not in endpoint:
            endpoint = f"{'https' if spec.storage.secure else 'http'}://{endpoint}"
        env.append({"name": "KUBETUNE_S3_ENDPOINT", "value": endpoint})
    if spec.storage.credentials_secret:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": spec.storage.credentials_secret,
                                                                   "key": key}}})
    if spec.hub_token_secret:
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": spec.hub_token_secret,
                                                                      "key": "HF_TOKEN"}}})
    env.append({"name": "PYTHONUNBUFFERED", "value": "1"})
    return env


def _container_resources(step: Step, spec: api.FineTuneRunSpec) -> dict[str, Any]:
    r = spec.resources
    if step.gpu:
        return {"requests": {"cpu": r.cpu, "memory": r.memory},
                "limits": {"memory": r.memory, "nvidia.com/gpu": str(r.gpus)}}
    # prepare (and CPU-only runs): modest, fixed; data conversion streams rows.
    return {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "8Gi" if step.kind == "prepare"
                                                                    else r.memory}}


def job_for_step(step: Step, spec: api.FineTuneRunSpec, owner: Owner, store_endpoint: str | None = None) -> dict[str, Any]:
    """The Job that runs `kubetune-job <step.args>` for `owner`'s run."""
    r = spec.resources
    labels = naming.labels(owner.name, step.name, step.kind, step.stage)
    if r.kueue_queue:
        labels[naming.KUEUE_QUEUE_LABEL] = r.kueue_queue
    container: dict[str, Any] = {
        "name": JOB_CONTAINER,
        "image": spec.images.jobs,
        "imagePullPolicy": spec.images.pull_policy,
        "command": ["kubetune-job"],
        "args": list(step.args),
        "env": _env(spec, store_endpoint),
        "resources": _container_resources(step, spec),
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if step.gpu:
        container["volumeMounts"] = [{"name": "dshm", "mountPath": "/dev/shm"}]
        pod["volumes"] = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}}]
        if r.node_selector:
            pod["nodeSelector"] = dict(r.node_selector)
        if r.tolerations:
            pod["tolerations"] = [t.wire() for t in r.tolerations]
    if r.priority_class_name:
        pod["priorityClassName"] = r.priority_class_name
    job_spec: dict[str, Any] = {
        "backoffLimit": r.backoff_limit,
        # Preempted or evicted pods (DisruptionTarget) are retried without spending the backoff budget;
        # train resumes from its last checkpoint. Exit code 2 is bad usage: retrying cannot help.
        "podFailurePolicy": {"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": JOB_CONTAINER, "operator": "In",
                                                  "values": [2]}},
        ]},
        "activeDeadlineSeconds": r.active_deadline_seconds,
        "ttlSecondsAfterFinished": r.ttl_seconds_after_finished,
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
    }
    if r.kueue_queue:
        job_spec["suspend"] = True  # Kueue admits (unsuspends) it when quota allows
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": naming.job_name(owner.name, step.name), "namespace": owner.namespace,
                     "labels": labels, "ownerReferences": [owner_reference(owner)],
                     "annotations": {f"{api.GROUP}/step": step.name}},
        "spec": job_spec,
    }
