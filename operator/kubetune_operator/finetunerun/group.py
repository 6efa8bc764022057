"""A training step on several nodes, built from what Kubernetes already has: pure builders and the
restart policy.

    manifests_for_step(step, spec, owner, ..., attempt=0, jobset=False) -> [Service, Job] | [JobSet] | [Job]

The objects are created in that order; the last one is the step's workload, whose state the run follows.

* Core objects (the default): a headless Service (`publishNotReadyAddresses`, so ranks find each other
  before anything is ready) selecting the step's pods by run and step labels, and an Indexed Job with one
  pod per node (`jobs.job_for_step`). Kueue admits the Job as one workload (all its pods together). A
  failed pod fails the Job (backoffLimit 0), which ends its other pods; the operator then starts the
  group again as a new Job (`<job>-r<attempt>`), from the newest checkpoint, at most
  `spec.resources.backoffLimit` times (`restart_attempt`).
* JobSet (the operator's `jobset` setting, for clusters with its CRD): one replicated Job holding the same
  Indexed Job template; JobSet makes the headless Service and restarts the whole group itself
  (`failurePolicy.maxRestarts` = backoffLimit). Kueue admits a JobSet as one workload as well.

Either way, exit code 2 (bad usage, the Job's FailJob rule: reason PodFailurePolicy) fails at once: a
restart cannot fix it. A step on one node is a single Job: its pod holds the whole group, so the Job's own
pod retries restart it.
"""

from __future__ import annotations

from typing import Any

from .. import naming
from ..apitypes import DEFAULT_JOBS_IMAGE
from ..kube.jobs import FAILED, JobView
from ..kube.owner import Owner
from . import api
from .jobs import job_for_step
from .plan import Step

JOBSET_API_VERSION = "jobset.x-k8s.io/v1alpha2"
JOBSET_KIND = "JobSet"
USAGE_FAILURE_REASON = "PodFailurePolicy"  # the Job's FailJob rule matched (exit code 2)


def headless_service(step: Step, owner: Owner) -> dict[str, Any]:
    """The DNS of a multi-node step's pods (`<job>-<index>.<service>`), the same for every attempt."""
    name = naming.group_service_name(owner.name, step.name)
    labels = naming.labels(owner.name, step.name, step.kind, step.stage)
    selector = {k: labels[k] for k in (naming.LABEL_RUN, naming.LABEL_STEP)}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": owner.namespace, "labels": labels,
                     "ownerReferences": [owner.reference()], "annotations": {naming.ANNOTATION_STEP: step.name}},
        "spec": {"clusterIP": "None", "selector": selector, "publishNotReadyAddresses": True,
                 "ports": [{"name": "rendezvous", "port": 29500, "targetPort": 29500, "protocol": "TCP"}]},
    }


def jobset(step: Step, spec: api.FineTuneRunSpec, owner: Owner, store_endpoint: str | None = None,
           shared_secret: str | None = None, *, jobs_image: str = DEFAULT_JOBS_IMAGE) -> dict[str, Any]:
    """The JobSet variant: the Indexed Job's template under one replicated Job; JobSet restarts the group."""
    r = spec.resources
    name = naming.jobset_name(owner.name, step.name)
    # JobSet names the child Job <jobset>-<replicated job>-0 and its pods <that>-<index>.<jobset>.
    child = f"{name}-{naming.GROUP_REPLICATED_JOB}-0"
    job = job_for_step(step, spec, owner, store_endpoint, shared_secret, jobs_image=jobs_image, subdomain=name,
                       name=child)
    job_spec = {k: v for k, v in job["spec"].items() if k not in ("suspend", "ttlSecondsAfterFinished")}
    meta = job["metadata"]
    body: dict[str, Any] = {
        "failurePolicy": {
            "maxRestarts": r.backoff_limit,
            "rules": [{"name": "usage-error", "action": "FailJobSet", "onJobFailureReasons": [USAGE_FAILURE_REASON]}],
        },
        "network": {"enableDNSHostnames": True, "publishNotReadyAddresses": True, "subdomain": name},
        "replicatedJobs": [{"name": naming.GROUP_REPLICATED_JOB, "replicas": 1,
                            "template": {"metadata": {"labels": dict(meta["labels"])}, "spec": job_spec}}],
        "ttlSecondsAfterFinished": r.ttl_seconds_after_finished,
    }
    if r.kueue_queue:
        body["suspend"] = True  # Kueue admits (unsuspends) the whole JobSet
    return {"apiVersion": JOBSET_API_VERSION, "kind": JOBSET_KIND,
            "metadata": {"name": name, "namespace": owner.namespace, "labels": dict(meta["labels"]),
                         "ownerReferences": meta["ownerReferences"], "annotations": dict(meta["annotations"])},
            "spec": body}


def manifests_for_step(step: Step, spec: api.FineTuneRunSpec, owner: Owner, store_endpoint: str | None = None,
                       shared_secret: str | None = None, *, jobs_image: str = DEFAULT_JOBS_IMAGE, attempt: int = 0,
                       use_jobset: bool = False) -> list[dict[str, Any]]:
    """What to create for `step` (in order; the last is the workload to follow). `jobs_image`: the operator's
    (the run's spec.images.jobs wins)."""
    if step.launch.nnodes == 1:
        return [job_for_step(step, spec, owner, store_endpoint, shared_secret, jobs_image=jobs_image)]
    if use_jobset:
        return [jobset(step, spec, owner, store_endpoint, shared_secret, jobs_image=jobs_image)]
    service = headless_service(step, owner)
    return [service, job_for_step(step, spec, owner, store_endpoint, shared_secret, jobs_image=jobs_image,
                                  attempt=attempt, subdomain=service["metadata"]["name"])]


def workload_name(run: str, step: Step, attempt: int = 0, use_jobset: bool = False) -> str:
    """The name of the object `manifests_for_step` makes last (the one the run follows)."""
    if step.launch.nnodes == 1:
        return naming.job_name(run, step.name)
    return naming.jobset_name(run, step.name) if use_jobset else naming.group_job_name(run, step.name, attempt)


def restart_attempt(step: Step, job: JobView, spec: api.FineTuneRunSpec, use_jobset: bool) -> int | None:
    """The attempt to start when a multi-node step's Indexed Job failed and the policy allows another
    (None: the failure stands). JobSets restart themselves; one-node Jobs retry their own pod."""
    if step.launch.nnodes == 1 or use_jobset or job.state != FAILED or job.reason == USAGE_FAILURE_REASON:
        return None
    return job.attempt + 1 if job.attempt < spec.resources.backoff_limit else None
