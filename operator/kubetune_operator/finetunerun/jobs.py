"""Pure builders: a plan Step -> the batch/v1 Job that runs it (a plain dict, ready for the API).

A step with several processes (`step.launch`, a train step with more than one GPU or node) runs
`torchrun` with the shared command line of `contract.launch`; with several nodes the Job is Indexed (one
pod per node, completions = parallelism = nodes, the node rank from each pod's completion index, the
master at index 0 behind the group's headless Service) and never retries a pod alone (backoffLimit 0):
the group as a whole restarts (`group.py` builds the Service, the JobSet variant, and the restarts).

Secrets are referenced, never read: the Job's env points at the run's credentials Secret
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and hub-token Secret (HF_TOKEN) by secretKeyRef. Pods
follow the restricted Pod Security profile (`kube.pods`), with the grace period a preempted training
step needs to publish its checkpoint.
"""

from __future__ import annotations

from typing import Any

from kubetune_jobs.contract import env as names
from kubetune_jobs.contract import launch
from kubetune_jobs.contract.store import resolve

from .. import naming
from ..apitypes import DEFAULT_JOBS_IMAGE
from ..kube import pods
from ..kube.owner import Owner
from . import api
from .plan import Step

JOB_CONTAINER = "kubetune-job"
SHM_SIZE = "16Gi"  # torch DataLoader workers and NCCL use /dev/shm; the default 64Mi is far too small


def _env(spec: api.FineTuneRunSpec, store_endpoint: str | None, shared_secret: str | None) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    store = resolve(spec.storage.endpoint or store_endpoint, secure=spec.storage.secure, credentials={}, environ={})
    if store is not None:
        env.append({"name": names.S3_ENDPOINT, "value": store.endpoint})
    credentials = spec.storage.credentials_secret or shared_secret
    if credentials:
        env += [pods.secret_env(key, credentials) for key in names.STORE_CREDENTIALS]
    if spec.hub_token_secret:
        env.append(pods.secret_env(names.HF_TOKEN, spec.hub_token_secret))
    return env + pods.scratch_env()


def _container_resources(step: Step, spec: api.FineTuneRunSpec) -> dict[str, Any]:
    r = spec.resources
    scratch = {"ephemeral-storage": r.scratch_storage}
    if step.gpu:
        return {"requests": {"cpu": r.cpu, "memory": r.memory, **scratch},
                "limits": {"memory": r.memory, "nvidia.com/gpu": str(r.gpus)}}
    # prepare (and CPU-only runs): modest, fixed; data conversion streams rows.
    return {"requests": {"cpu": "1", "memory": "4Gi", **scratch},
            "limits": {"memory": "8Gi" if step.kind == "prepare" else r.memory}}


def _command(step: Step) -> tuple[list[str], list[str]]:
    """(command, args) of the container: `kubetune-job`, or torchrun running it on every rank."""
    if step.launch.distributed:
        return [launch.TORCHRUN], [*step.launch.torchrun_args(), *step.args]
    return ["kubetune-job"], list(step.args)


def _launch_env(step: Step, spec: api.FineTuneRunSpec, name: str, subdomain: str | None) -> list[dict[str, Any]]:
    if not step.launch.distributed:
        return []
    out = [{"name": k, "value": v} for k, v in launch.shutdown_env(spec.resources.termination_grace_seconds).items()]
    if step.launch.nnodes > 1 and subdomain:
        # Index 0 is the master; every pod learns its own node rank from its completion index.
        master = f"{name}-0.{subdomain}"
        out += [{"name": k, "value": v} for k, v in launch.rendezvous_env(master).items()]
        out.append({"name": launch.NODE_RANK_ENV, "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{naming.COMPLETION_INDEX_ANNOTATION}']"}}})
    return out


def job_for_step(step: Step, spec: api.FineTuneRunSpec, owner: Owner, store_endpoint: str | None = None,
                 shared_secret: str | None = None, *, jobs_image: str = DEFAULT_JOBS_IMAGE, attempt: int = 0,
                 subdomain: str | None = None, name: str | None = None) -> dict[str, Any]:
    """The Job that runs `kubetune-job <step.args>` for `owner`'s run. `store_endpoint` is the operator's
    default store, `shared_secret` the run's copy of its keys when that store is shared (`kube.shared_store`),
    `jobs_image` the operator's jobs image (what runs unless the run names its own).
    A multi-node step's Job also needs its `attempt` and the `subdomain` (headless Service) of its pods,
    and `name` the pods' master address is built from (group.py passes all three)."""
    r = spec.resources
    multinode = step.launch.nnodes > 1
    if name is None:
        name = naming.group_job_name(owner.name, step.name, attempt) if multinode else \
            naming.job_name(owner.name, step.name)
    command, args = _command(step)
    labels = naming.labels(owner.name, step.name, step.kind, step.stage)
    if r.kueue_queue:
        labels[naming.KUEUE_QUEUE_LABEL] = r.kueue_queue
    volumes, mounts = pods.scratch_volumes(r.scratch_storage)
    container: dict[str, Any] = {
        "name": JOB_CONTAINER,
        "image": spec.images.jobs or jobs_image,
        "imagePullPolicy": spec.images.pull_policy,
        "command": command,
        "args": args,
        "env": _env(spec, store_endpoint, shared_secret) + _launch_env(step, spec, name, subdomain),
        "resources": _container_resources(step, spec),
        "securityContext": pods.container_security(),
        "volumeMounts": mounts,
    }
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container], "volumes": volumes,
                           "securityContext": pods.pod_security(), "automountServiceAccountToken": False,
                           "enableServiceLinks": False,
                           # train turns SIGTERM into "checkpoint after this step": give it the time.
                           "terminationGracePeriodSeconds": r.termination_grace_seconds}
    if step.gpu:
        mounts.insert(0, {"name": "dshm", "mountPath": "/dev/shm"})
        volumes.insert(0, {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}})
        if r.node_selector:
            pod["nodeSelector"] = dict(r.node_selector)
        if r.tolerations:
            pod["tolerations"] = [t.wire() for t in r.tolerations]
    if r.priority_class_name:
        pod["priorityClassName"] = r.priority_class_name
    if multinode and subdomain:
        pod["subdomain"] = subdomain  # pods resolve as <job>-<index>.<subdomain>
    job_spec: dict[str, Any] = {
        # One pod of a group cannot restart alone (its peers hold the collective): the group restarts.
        "backoffLimit": 0 if multinode else r.backoff_limit,
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
    if multinode:
        job_spec.update(completionMode="Indexed", completions=step.launch.nnodes, parallelism=step.launch.nnodes)
    if r.kueue_queue:
        job_spec["suspend"] = True  # Kueue admits (unsuspends) it when quota allows
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": owner.namespace,
                     "labels": labels, "ownerReferences": [owner.reference()],
                     "annotations": {naming.ANNOTATION_STEP: step.name,
                                     naming.ANNOTATION_FINGERPRINT: step.fingerprint,
                                     naming.ANNOTATION_ATTEMPT: str(attempt)}},
        "spec": job_spec,
    }
