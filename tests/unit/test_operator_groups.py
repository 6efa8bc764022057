"""Training beyond one GPU, as built objects: a pod with several GPUs runs torchrun; a step on several nodes is
an Indexed Job plus a headless Service (or a JobSet), each validated against the Kubernetes schemas (the
JobSet against its published CRD, tests/fixtures/jobset/SOURCE.md), with the torchrun environment checked by
torchrun's own parser; the restart policy, the local executor's command and the refused combinations."""

from __future__ import annotations

import copy
import gzip
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from test_launch import torchrun_parse
from test_operator_api import minimal

from kubetune_jobs.contract import launch
from kubetune_local import run as local
from kubetune_operator import naming
from kubetune_operator.finetunerun import api, group, validation
from kubetune_operator.finetunerun.plan import build_plan
from kubetune_operator.kube.jobs import FAILED, JobView
from kubetune_operator.kube.owner import Owner
from support.pod_security import violations

K8S_VERSION = kubernetes_validate.latest_version()
OWNER = Owner(api.KIND, "ref", "ml", "0d7f9a3c-1111-4c2e-9d5e-3f1b2a3c4d5e")
JOBSET_CRD = Path(__file__).parents[1] / "fixtures" / "jobset" / "jobset.x-k8s.io_jobsets-v0.12.0.yaml.gz"


def spec_with(resources: dict, training: dict | None = None, name_stage: str = "chat") -> api.FineTuneRunSpec:
    body = minimal()
    body["stages"][0]["name"] = name_stage
    body["resources"] = resources
    body["training"] = {"loadIn4bit": False, **(training or {})}
    return api.parse_spec(body)


def train_step(spec: api.FineTuneRunSpec, owner: Owner = OWNER):
    return next(s for s in build_plan(owner.name, owner.namespace, spec, "s3://kubetune") if s.kind == "train")


def env_of(container: dict) -> dict:
    return {e["name"]: e for e in container["env"]}


def pod_env(container: dict, index: int) -> dict[str, str]:
    """The environment a pod of completion index `index` gets (the downward API resolved as the kubelet would)."""
    out = {}
    for name, e in env_of(container).items():
        if "value" in e:
            out[name] = e["value"]
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == \
                f"metadata.annotations['{naming.COMPLETION_INDEX_ANNOTATION}']":
            out[name] = str(index)
    return out


def test_one_pod_with_several_gpus_runs_torchrun_with_one_rank_per_gpu() -> None:
    spec = spec_with({"gpus": 4})
    step = train_step(spec)
    [job] = group.manifests_for_step(step, spec, OWNER)
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["torchrun"] and c["resources"]["limits"]["nvidia.com/gpu"] == "4"
    args = torchrun_parse(c["args"], pod_env(c, 0))
    assert (args.nproc_per_node, args.nnodes, args.standalone) == ("4", "1", True)
    assert args.training_script == launch.JOB_MODULE and args.training_script_args == list(step.args)
    # torchrun lets the ranks use the pod's grace period to checkpoint, not its own 30 s.
    grace = spec.resources.termination_grace_seconds
    assert int(pod_env(c, 0)[launch.SHUTDOWN_TIMEOUT_ENV]) == grace - 10
    assert job["spec"]["backoffLimit"] == spec.resources.backoff_limit and "completionMode" not in job["spec"]
    # Evaluation and data preparation stay single processes.
    for other in build_plan(OWNER.name, OWNER.namespace, spec, "s3://kubetune"):
        if other.kind != "train":
            assert not other.launch.distributed


@pytest.mark.parametrize("queue", [None, "team-a"])
def test_several_nodes_are_an_indexed_job_behind_a_headless_service(queue: str | None) -> None:
    spec = spec_with({"gpus": 8, "nodes": 3, "kueueQueue": queue})
    step = train_step(spec)
    service, job = group.manifests_for_step(step, spec, OWNER)
    for obj in (service, job):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        assert obj["metadata"]["ownerReferences"] == [OWNER.reference()]
    pod, template_labels = job["spec"]["template"]["spec"], job["spec"]["template"]["metadata"]["labels"]
    assert violations(pod, job["spec"]["template"]["metadata"]) == []
    js = job["spec"]
    assert (js["completionMode"], js["completions"], js["parallelism"], js["backoffLimit"]) == ("Indexed", 3, 3, 0)
    # The Service names every pod of the group: headless, before readiness, selecting the template's labels.
    s = service["spec"]
    assert s["clusterIP"] == "None" and s["publishNotReadyAddresses"] is True
    assert s["selector"].items() <= template_labels.items() and pod["subdomain"] == service["metadata"]["name"]
    # What torchrun reads on each node: the node rank from the completion index, the master at index 0.
    c = pod["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "8"
    for index in range(3):
        args = torchrun_parse(c["args"], pod_env(c, index))
        assert (args.nnodes, args.nproc_per_node, args.node_rank, args.standalone) == ("3", "8", index, False)
        assert args.master_addr == f"{job['metadata']['name']}-0.{service['metadata']['name']}"
        assert args.master_port == launch.MASTER_PORT and args.training_script_args == list(step.args)
    # Kueue admits the group as one workload: the one Job carries the queue and starts suspended.
    assert job["metadata"]["labels"].get(naming.KUEUE_QUEUE_LABEL) == queue
    assert js.get("suspend", False) is bool(queue)
    assert naming.KUEUE_QUEUE_LABEL not in service["metadata"]["labels"]


def test_a_restarted_group_is_a_new_job_under_the_same_service() -> None:
    spec = spec_with({"gpus": 2, "nodes": 2})
    step = train_step(spec)
    first = group.manifests_for_step(step, spec, OWNER)
    again = group.manifests_for_step(step, spec, OWNER, attempt=1)
    assert first[0] == again[0]
    assert again[1]["metadata"]["name"] == first[1]["metadata"]["name"] + "-r1"
    assert again[1]["metadata"]["annotations"][naming.ANNOTATION_ATTEMPT] == "1"
    master = pod_env(again[1]["spec"]["template"]["spec"]["containers"][0], 1)[launch.MASTER_ADDR_ENV]
    assert master.startswith(again[1]["metadata"]["name"] + "-0.")
    assert group.workload_name(OWNER.name, step, 1) == again[1]["metadata"]["name"]


def test_long_names_leave_room_for_pod_hostnames() -> None:
    owner = Owner(api.KIND, "9" + "a" * 62, "ml", OWNER.uid)  # a run name may start with a digit
    spec = spec_with({"gpus": 1, "nodes": 64}, name_stage="s" * 20)
    step = train_step(spec, owner)
    service, job = group.manifests_for_step(step, spec, owner, attempt=99)
    kubernetes_validate.validate(service, K8S_VERSION, strict=True)
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    assert len(f"{job['metadata']['name']}-63") <= 63 and service["metadata"]["name"][0].isalpha()
    jobset = group.jobset(step, spec, owner)
    assert len(f"{jobset['metadata']['name']}-{naming.GROUP_REPLICATED_JOB}-0-63") <= 63


def _strict(node):
    """A CRD's OpenAPI schema as JSON schema that refuses unknown fields, as the API server's pruning would
    silently drop them (nullable -> a type list; Kubernetes extensions dropped)."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items() if not k.startswith("x-kubernetes") and k != "nullable"}
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
    if "properties" in node and "additionalProperties" not in node \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def jobset_validator() -> jsonschema.Draft4Validator:
    crd = yaml.safe_load(gzip.decompress(JOBSET_CRD.read_bytes()))
    assert crd["spec"]["group"] == "jobset.x-k8s.io" and crd["spec"]["names"]["kind"] == group.JOBSET_KIND
    version = next(v for v in crd["spec"]["versions"] if v["name"] == group.JOBSET_API_VERSION.split("/")[1])
    assert version["served"] and version["storage"]
    return jsonschema.Draft4Validator(_strict(version["schema"]["openAPIV3Schema"]))


@pytest.mark.parametrize("queue", [None, "team-a"])
def test_jobset_variant_validates_against_the_published_crd(queue: str | None, jobset_validator) -> None:
    spec = spec_with({"gpus": 4, "nodes": 2, "kueueQueue": queue, "backoffLimit": 5})
    step = train_step(spec)
    [js] = group.manifests_for_step(step, spec, OWNER, use_jobset=True)
    jobset_validator.validate(js)
    [rj] = js["spec"]["replicatedJobs"]
    # The replicated Job is a whole batch/v1 Job template: validated as one, and its pods as restricted pods.
    as_job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x", "namespace": "ml"},
              "spec": rj["template"]["spec"]}
    kubernetes_validate.validate(as_job, K8S_VERSION, strict=True)
    assert violations(rj["template"]["spec"]["template"]["spec"], rj["template"]["spec"]["template"]["metadata"]) == []
    name = js["metadata"]["name"]
    assert rj["replicas"] == 1 and rj["template"]["spec"]["completions"] == 2
    assert js["spec"]["network"]["subdomain"] == name and js["spec"]["network"]["publishNotReadyAddresses"]
    c = rj["template"]["spec"]["template"]["spec"]["containers"][0]
    args = torchrun_parse(c["args"], pod_env(c, 1))
    assert args.node_rank == 1 and args.master_addr == f"{name}-{naming.GROUP_REPLICATED_JOB}-0-0.{name}"
    # JobSet restarts the whole group itself, as often as backoffLimit says; a usage error fails it at once.
    fp = js["spec"]["failurePolicy"]
    assert fp["maxRestarts"] == 5 and fp["rules"][0]["action"] == "FailJobSet"
    assert fp["rules"][0]["onJobFailureReasons"] == [group.USAGE_FAILURE_REASON]
    assert js["metadata"]["labels"].get(naming.KUEUE_QUEUE_LABEL) == queue
    assert js["spec"].get("suspend", False) is bool(queue) and "suspend" not in rj["template"]["spec"]
    assert js["metadata"]["ownerReferences"] == [OWNER.reference()]


def test_the_jobset_schema_check_is_not_vacuous(jobset_validator) -> None:
    spec = spec_with({"gpus": 4, "nodes": 2})
    good = group.jobset(train_step(spec), spec, OWNER)
    for mutate in (lambda j: j["spec"].update(replicaJobs=[]),  # a misspelt field the API server would drop
                   lambda j: j["spec"]["failurePolicy"].update(maxRestarts="five"),
                   lambda j: j["spec"]["failurePolicy"]["rules"][0].update(action="Retry"),
                   lambda j: j["spec"]["replicatedJobs"][0].pop("template")):
        bad = copy.deepcopy(good)
        mutate(bad)
        with pytest.raises(jsonschema.ValidationError):
            jobset_validator.validate(bad)


def test_restart_policy_of_a_group() -> None:
    spec = spec_with({"gpus": 2, "nodes": 2, "backoffLimit": 2})
    step = train_step(spec)
    failed = JobView("j", FAILED, "BackoffLimitExceeded")
    assert group.restart_attempt(step, failed, spec, use_jobset=False) == 1
    assert group.restart_attempt(step, JobView("j", FAILED, "BackoffLimitExceeded", attempt=1), spec, False) == 2
    assert group.restart_attempt(step, JobView("j", FAILED, "BackoffLimitExceeded", attempt=2), spec, False) is None
    assert group.restart_attempt(step, JobView("j", FAILED, group.USAGE_FAILURE_REASON), spec, False) is None
    assert group.restart_attempt(step, failed, spec, use_jobset=True) is None  # JobSet restarts itself
    one_node = spec_with({"gpus": 2, "backoffLimit": 2})
    assert group.restart_attempt(train_step(one_node), failed, one_node, False) is None  # the Job retries its pod


def test_local_executor_runs_every_rank_of_the_manifest_on_this_machine() -> None:
    spec = spec_with({"gpus": 2, "nodes": 2})
    step = train_step(spec)
    cmd = local.local_command(step)
    assert cmd[1:3] == ["-m", launch.TORCHRUN_MODULE]
    args = torchrun_parse(cmd[3:], {})
    assert (args.nproc_per_node, args.nnodes, args.standalone) == ("4", "1", True)
    assert args.training_script_args == list(step.args)
    prepare = next(s for s in build_plan(OWNER.name, OWNER.namespace, spec, "/tmp/x") if s.kind == "prepare")
    assert local.local_command(prepare) == [*local.JOB, *prepare.args]


@pytest.mark.parametrize(("resources", "training", "field", "word"), [
    ({"gpus": 0, "nodes": 2}, {}, "spec.resources.nodes", "need GPUs"),
    ({"gpus": 2}, {"distribution": "fsdp", "loadIn4bit": True}, "spec.training.distribution", "4-bit"),
    ({"gpus": 2}, {"distribution": "fsdp", "backend": "unsloth"}, "spec.training.backend", "fsdp"),
    ({"gpus": 4, "nodes": 2}, {"globalBatchSize": 16}, "spec.training.globalBatchSize", "4 × 8 = 32"),
])
def test_impossible_combinations_are_refused_naming_the_field(resources, training, field, word) -> None:
    found = validation.problems(spec_with(resources, training))
    assert any(p.startswith(f"{field}:") and word in p for p in found), found


def test_possible_combinations_pass() -> None:
    for resources, training in (({"gpus": 4, "nodes": 2}, {"globalBatchSize": 32}),
                                ({"gpus": 2}, {"distribution": "fsdp"}),
                                ({"gpus": 8, "nodes": 4}, {"loadIn4bit": True}),
                                ({"gpus": 0}, {"globalBatchSize": 8})):
        assert validation.problems(spec_with(resources, training)) == []


def test_stage_status_says_the_world_size_and_effective_batch() -> None:
    from kubetune_operator.finetunerun import results

    got = results.stage_progress({"state": "running", "step": 3, "total": 9, "world_size": 16, "batch_size": 4,
                                  "grad_accum": 1, "effective_batch": 64})
    assert (got["world_size"], got["effective_batch"]) == (16, 64)
    api.StageStatus(name="chat", **got)  # fields the CRD declares (else pruned)
