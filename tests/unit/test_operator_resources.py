"""Job builders: every manifest validates against the Kubernetes OpenAPI schema (kubernetes-validate), for
CPU, GPU and Kueue variants; Secrets are referenced, never inlined."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
from test_operator_api import EXAMPLE, minimal

from kubetune_operator import naming
from kubetune_operator.finetunerun import api
from kubetune_operator.finetunerun import jobs as resources
from kubetune_operator.finetunerun.plan import build_plan
from kubetune_operator.kube.owner import Owner

K8S_VERSION = kubernetes_validate.latest_version()
OWNER = Owner(api.KIND, "ref", "ml", "0d7f9a3c-1111-4c2e-9d5e-3f1b2a3c4d5e")


def variants() -> dict[str, api.FineTuneRunSpec]:
    cpu = minimal()
    cpu["resources"] = {"gpus": 0}
    gpu = minimal()
    gpu["storage"] = {"endpoint": "minio.store:9000", "credentialsSecret": "store-creds", "secure": True}
    gpu["hubTokenSecret"] = "hf"
    gpu["resources"] = {"gpus": 4, "memory": "200Gi", "cpu": "32", "nodeSelector": {"gpu.type": "h100"},
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                        "priorityClassName": "training"}
    kueue = minimal()
    kueue["resources"] = {"kueueQueue": "team-a"}
    return {"reference": api.RESOURCE.load_manifest(EXAMPLE).spec, "cpu": api.RESOURCE.parse_spec(cpu), "gpu": api.RESOURCE.parse_spec(gpu),
            "kueue": api.RESOURCE.parse_spec(kueue)}


def all_jobs():
    for label, spec in variants().items():
        for step in build_plan(OWNER.name, OWNER.namespace, spec, "s3://kubetune"):
            yield label, spec, step, resources.job_for_step(step, spec, OWNER, "http://default-store:9000")


@pytest.mark.parametrize("label", ["reference", "cpu", "gpu", "kueue"])
def test_every_job_validates_against_the_kubernetes_schema(label: str) -> None:
    jobs = [job for lbl, _, _, job in all_jobs() if lbl == label]
    assert jobs
    for job in jobs:
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def test_job_shape_follows_the_step() -> None:
    for label, spec, step, job in all_jobs():
        meta, pod = job["metadata"], job["spec"]["template"]["spec"]
        c = pod["containers"][0]
        assert meta["name"] == naming.job_name(OWNER.name, step.name)
        if step.launch.distributed:  # a train step with several GPUs: torchrun runs kubetune-job on every rank
            assert c["command"] == ["torchrun"] and c["args"] == step.launch.torchrun_args() + list(step.args)
            assert step.kind == "train" and step.launch.world_size == spec.resources.gpus, (label, step.name)
        else:
            assert c["args"] == list(step.args) and c["command"] == ["kubetune-job"]
        assert meta["ownerReferences"][0]["uid"] == OWNER.uid and meta["ownerReferences"][0]["controller"]
        assert meta["labels"][naming.LABEL_RUN] == "ref" and meta["labels"][naming.LABEL_STEP] == step.name
        rules = job["spec"]["podFailurePolicy"]["rules"]
        assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
        assert job["spec"]["backoffLimit"] == spec.resources.backoff_limit
        limits = c["resources"]["limits"]
        if step.gpu:
            assert limits["nvidia.com/gpu"] == str(spec.resources.gpus), (label, step.name)
            assert {"name": "dshm", "mountPath": "/dev/shm"} in c["volumeMounts"]
            assert pod["volumes"][0]["emptyDir"]["medium"] == "Memory"
        else:
            assert "nvidia.com/gpu" not in limits and "dshm" not in {v["name"] for v in pod["volumes"]}
        queue = spec.resources.kueue_queue
        assert meta["labels"].get(naming.KUEUE_QUEUE_LABEL) == queue
        assert job["spec"].get("suspend", False) is bool(queue)


def test_gpu_placement_and_secret_references() -> None:
    jobs = {step.name: job for lbl, _, step, job in all_jobs() if lbl == "gpu"}
    pod = jobs["train-chat"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"gpu.type": "h100"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["priorityClassName"] == "training"
    assert "nodeSelector" not in jobs["prepare-chat"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["KUBETUNE_S3_ENDPOINT"]["value"] == "https://minio.store:9000"  # the run's endpoint wins
    for key, secret in (("AWS_ACCESS_KEY_ID", "store-creds"), ("AWS_SECRET_ACCESS_KEY", "store-creds"),
                        ("HF_TOKEN", "hf")):
        assert env[key] == {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
    # nothing but references: no env var carries a literal value for a credential
    for job in jobs.values():
        for e in job["spec"]["template"]["spec"]["containers"][0]["env"]:
            if e["name"] in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "HF_TOKEN"):
                assert "value" not in e


def test_default_store_endpoint_applies_without_a_run_endpoint() -> None:
    jobs = [job for lbl, _, _, job in all_jobs() if lbl == "cpu"]
    env = {e["name"]: e.get("value") for e in jobs[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KUBETUNE_S3_ENDPOINT"] == "http://default-store:9000"
    assert "AWS_ACCESS_KEY_ID" not in env


def test_an_invalid_builder_output_would_be_caught() -> None:
    """The schema check is not vacuous: a malformed Job is rejected."""
    _, _, _, job = next(all_jobs())
    broken = json.loads(json.dumps(job))
    broken["spec"]["backoffLimit"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_every_job_pod_passes_the_restricted_pod_security_profile() -> None:
    from support.pod_security import violations

    checked = 0
    for _, _, step, job in all_jobs():
        pod = job["spec"]["template"]["spec"]
        assert violations(pod, job["spec"]["template"]["metadata"]) == [], step.name
        # Read-only root: every place the jobs write is a mounted emptyDir.
        c = pod["containers"][0]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        mounted = {m["mountPath"] for m in c["volumeMounts"]}
        env = {e["name"]: e.get("value") for e in c["env"]}
        for var in ("HOME", "TMPDIR", "KUBETUNE_CACHE", "HF_HOME"):
            assert any(env[var].startswith(m) for m in mounted), var
        assert pod["automountServiceAccountToken"] is False
        assert c["resources"]["requests"]["ephemeral-storage"]
        assert pod["terminationGracePeriodSeconds"] >= 30
        checked += 1
    assert checked >= 20


def test_a_privileged_job_would_be_caught() -> None:
    from support.pod_security import violations

    _, _, _, job = next(all_jobs())
    pod = json.loads(json.dumps(job["spec"]["template"]["spec"]))
    pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    assert len(violations(pod)) >= 2
