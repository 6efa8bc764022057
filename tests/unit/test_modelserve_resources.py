"""ModelServe builders: every object validates against the Kubernetes schemas for a merged model from a
FineTuneRun, a Hub model, LoRA mode and two GPUs; pods pass the restricted Pod Security profile; the API key
is a Secret reference only; vLLM's argv says what the spec says; bad vLLM settings are refused by field."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest

from kubetune_operator.kube.owner import Owner
from kubetune_operator.modelserve import adapters, api, resources, source, validation, vllm
from support.pod_security import violations

ROOT = Path(__file__).resolve().parents[2]
K8S = kubernetes_validate.latest_version()
OWNER = Owner(api.KIND, "assistant", "ml", "8c3e0f5a-2222-4b1d-8e6f-0a1b2c3d4e5f")
BUILD = resources.Build(owner=OWNER, served_name="assistant", jobs_image="ghcr.io/kubetune/kubetune-jobs:0.1.0",
                        vllm_image="vllm/vllm-openai:v0.32.0", store_endpoint="http://minio.kubetune:9000",
                        pushgateway="http://pgw.kubetune:9091", prometheus="http://prometheus:9090")
RUN = {"spec": {"baseModel": "Qwen/Qwen2.5-3B", "stages": [{"name": "chat"}, {"name": "tools"}]},
       "status": {"phase": "Succeeded", "artifacts": {
           "finalModel": "s3://kubetune/ml/ft/stages/tools/merged",
           "models": {"chat": "s3://kubetune/ml/ft/stages/chat/merged", "tools": "s3://kubetune/ml/ft/stages/tools/merged"},
           "adapters": {"chat": "s3://kubetune/ml/ft/stages/chat/adapter",
                        "tools": "s3://kubetune/ml/ft/stages/tools/adapter"},
           "datasets": {"chat": "s3://kubetune/ml/ft/data/chat", "tools": "s3://kubetune/ml/ft/data/tools"}}}}


def spec(**over) -> api.ModelServeSpec:
    raw = {"model": {"fineTuneRun": {"name": "ft"}}, "apiKeySecret": {"name": "serve-key"},
           "storage": {"credentialsSecret": "store"}}
    raw.update(over)
    return api.RESOURCE.parse_spec(raw)


def target(s: api.ModelServeSpec) -> source.Target:
    resolved = source.resolve(s, RUN)
    if isinstance(resolved, tuple):
        t, where = resolved
        markers = {u: b'{"config.json": {"size": 1, "sha256": "x"}}' for u in (where.model_uri, where.adapter_uri) if u}
        resolved = source.with_markers(t, where, markers)
    assert isinstance(resolved, source.Target), resolved
    return resolved


def variants() -> dict[str, api.ModelServeSpec]:
    return {
        "merged": spec(),
        "hub": spec(model={"hub": "Qwen/Qwen2.5-3B-Instruct"}, hubTokenSecret="hf"),
        "lora": spec(model={"fineTuneRun": {"name": "ft", "stage": "tools"}, "lora": {"enabled": True, "maxRank": 16}}),
        "two-gpus": spec(resources={"gpus": 2, "nodeSelector": {"gpu": "h100"},
                                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]},
                         autoscaling={"enabled": True}, vllm={"chatTemplate": "{{ messages }}"}),
        "adapters": spec(adapters=[{"name": "billing", "uri": "s3://kubetune/adapters/billing"},
                                   {"name": "support", "fineTuneRun": {"name": "ft-support"}}]),
    }


def objects(s: api.ModelServeSpec, keda: bool = False) -> list[dict]:
    t = target(s)
    rev = source.revision(s, t, BUILD.served_name, BUILD.vllm_image)
    out = [resources.deployment(s, BUILD, rev, t, 2), resources.service(BUILD, rev, stable=True),
           resources.service(BUILD, rev, stable=False), resources.bench_job(s, BUILD, rev),
           resources.gate_job(s, BUILD, rev, t.datasets), resources.hpa(s, BUILD, rev),
           resources.probe_deployment(s, BUILD, rev)]
    cm = resources.template_configmap(s, BUILD, rev)
    out += [cm] if cm else []
    if s.adapters:
        found = [adapters.Located(a.name, "s3://kubetune/adapters/x", "s3://kubetune/adapters/x", "a" * 64)
                 for a in s.adapters]
        out.append(resources.adapters_configmap(BUILD, adapters.adapter_set(s, BUILD.served_name, found, [])))
    return out


@pytest.mark.parametrize("label", list(variants()))
def test_every_object_validates_against_the_kubernetes_schema(label: str) -> None:
    for obj in objects(variants()[label]):
        kubernetes_validate.validate(obj, K8S, strict=True)
        assert obj["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid


@pytest.mark.parametrize("label", list(variants()))
def test_every_pod_passes_the_restricted_profile_and_references_secrets_only(label: str) -> None:
    for obj in objects(variants()[label]):
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        pod = obj["spec"]["template"]["spec"]
        assert violations(pod, obj["spec"]["template"]["metadata"]) == [], (label, obj["metadata"]["name"])
        for c in pod.get("initContainers", []) + pod["containers"]:
            for e in c["env"]:
                if e["name"] in ("VLLM_API_KEY", "KUBETUNE_API_KEY", "AWS_SECRET_ACCESS_KEY", "HF_TOKEN"):
                    assert "value" not in e and e["valueFrom"]["secretKeyRef"]["name"]
            assert "serve-key" not in " ".join(c.get("args", [])) and "--api-key" not in c.get("args", [])


def test_the_deployment_fetches_verifies_and_serves_with_tool_calls() -> None:
    s = variants()["merged"]
    dep = objects(s)[0]
    pod = dep["spec"]["template"]["spec"]
    (fetch,) = pod["initContainers"]
    assert fetch["args"][:3] == ["fetch", "--model", "s3://kubetune/ml/ft/stages/tools/merged"]
    server = pod["containers"][0]
    args = server["args"]
    assert args[args.index("--model") + 1] == resources.MODEL_DIR
    assert args[args.index("--tool-call-parser") + 1] == "hermes" and "--enable-auto-tool-choice" in args
    assert args[args.index("--chat-template") + 1] == f"{resources.MODEL_DIR}/chat_template.jinja"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in server["volumeMounts"]
    assert next(v for v in pod["volumes"] if v["name"] == "dshm")["emptyDir"]["medium"] == "Memory"
    assert server["startupProbe"]["httpGet"]["path"] == "/health"
    assert server["startupProbe"]["periodSeconds"] * server["startupProbe"]["failureThreshold"] >= 1800
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"
    env = {e["name"]: e for e in server["env"]}
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "serve-key", "key": "api-key"}


def test_hub_lora_and_two_gpu_variants() -> None:
    v = variants()
    hub = objects(v["hub"])[0]["spec"]["template"]["spec"]
    assert "initContainers" not in hub
    args = hub["containers"][0]["args"]
    assert args[args.index("--model") + 1] == "Qwen/Qwen2.5-3B-Instruct" and "--chat-template" not in args
    lora = objects(v["lora"])[0]["spec"]["template"]["spec"]
    args = lora["containers"][0]["args"]
    # The tools stage's adapter rides on the chat stage's merged model, the model it was trained from.
    assert lora["initContainers"][0]["args"][2] == "s3://kubetune/ml/ft/stages/chat/merged"
    assert "--enable-lora" in args and args[args.index("--lora-modules") + 1] == f"assistant={resources.MODEL_DIR}-adapter"
    assert args[args.index("--max-lora-rank") + 1] == "16"
    two = objects(v["two-gpus"])
    pod = two[0]["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "2" and pod["nodeSelector"] == {"gpu": "h100"}
    assert args[args.index("--chat-template") + 1] == f"{resources.TEMPLATES}/chat_template.jinja"
    assert any(o["kind"] == "ConfigMap" for o in two)


def test_revisions_follow_the_model_and_vllm_settings_not_the_scheduling() -> None:
    base = variants()["merged"]
    rev = source.revision(base, target(base), "assistant", BUILD.vllm_image)
    scaled = spec(replicas=3, resources={"cpu": "16"})
    assert source.revision(scaled, target(scaled), "assistant", BUILD.vllm_image) == rev
    longer = spec(vllm={"maxModelLen": 8192})
    assert source.revision(longer, target(longer), "assistant", BUILD.vllm_image) != rev
    other = target(base)
    moved = source.Target(**{**other.__dict__, "digest": "0" * 64})
    assert source.revision(base, moved, "assistant", BUILD.vllm_image) != rev, "new model content, new revision"


def test_the_services_select_revisions_and_the_stable_one_is_the_endpoint() -> None:
    s = variants()["merged"]
    _, stable, own = objects(s)[:3]
    assert stable["metadata"]["name"] == "assistant" and own["metadata"]["name"].startswith("assistant-")
    assert stable["spec"]["selector"] == own["spec"]["selector"]
    assert resources.endpoint("assistant", "ml") == "http://assistant.ml.svc.cluster.local:8000/v1"


def test_waiting_and_unavailable_models_name_the_field() -> None:
    s = spec()
    running = json.loads(json.dumps(RUN))
    running["status"] = {"phase": "Running", "currentStep": "train-tools"}
    assert isinstance(source.resolve(s, running), source.Waiting)
    failed = {**RUN, "status": {"phase": "Failed", "conditions": [{"type": "Succeeded", "message": "OOM"}]}}
    gone = source.resolve(s, failed)
    assert isinstance(gone, source.Unavailable) and gone.reason == "RunFailed" and "OOM" in gone.message
    missing = source.resolve(s, None)
    assert isinstance(missing, source.Unavailable) and "spec.model.fineTuneRun.name" in missing.message
    nostage = source.resolve(spec(model={"fineTuneRun": {"name": "ft", "stage": "nope"}}), RUN)
    assert isinstance(nostage, source.Unavailable) and "spec.model.fineTuneRun.stage" in nostage.message
    t, where = source.resolve(spec(model={"uri": "s3://kubetune/models/x"}), None)
    unmarked = source.with_markers(t, where, {"s3://kubetune/models/x": None})
    assert isinstance(unmarked, source.Unavailable) and "spec.model.uri" in unmarked.message


@pytest.mark.parametrize("raw, field", [
    ({"vllm": {"toolCallParser": "nope"}}, "spec.vllm.toolCallParser"),
    ({"vllm": {"maxModelLen": 0}}, "spec.vllm.maxModelLen"),
    ({"vllm": {"gpuMemoryUtilization": 1.5}}, "spec.vllm.gpuMemoryUtilization"),
    ({"vllm": {"gpuMemoryUtilization": 0}}, "spec.vllm.gpuMemoryUtilization"),
    ({"vllm": {"tensorParallelSize": 3}, "resources": {"gpus": 4}}, "spec.vllm.tensorParallelSize"),
    ({"vllm": {"tensorParallelSize": 2}, "resources": {"gpus": 0}}, "spec.vllm.tensorParallelSize"),
    ({"vllm": {"extraArgs": ["--api-key", "s3cret"]}}, "spec.vllm.extraArgs[0]"),
    ({"model": {"uri": "s3://b/m", "hub": "x/y"}}, "spec.model"),
    ({"model": {}}, "spec.model"),
    ({"model": {"hub": "x/y", "lora": {"enabled": True}}}, "spec.model"),
    ({"replicas": -1}, "spec.replicas"),
    ({"promotion": {"suites": [{"name": "mmlu"}]}}, "spec.promotion.suites[0].name"),
    ({"promotion": {"suites": [{"name": "chat"}]}}, "spec.promotion.suites[0].name"),
    ({"promotion": {"gate": {"minAccuracy": {"bfcl-irrelevance": 0.5}}}}, "spec.promotion.gate.minAccuracy"),
    ({"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}, "spec.autoscaling.minReplicas"),
    ({"apiKeySecret": {"name": "Bad Name"}}, "spec.apiKeySecret.name"),
    ({"storage": {"endpoint": "http://minio:9000"}}, "spec.storage.credentialsSecret"),
])
def test_invalid_settings_are_refused_naming_the_field(raw: dict, field: str) -> None:
    body = {"model": {"fineTuneRun": {"name": "ft"}}, **raw}
    try:
        message = "; ".join(validation.problems(api.RESOURCE.parse_spec(body)))
    except api.SpecError as exc:
        message = str(exc)
    assert message.startswith(field) or f"; {field}" in message, message


def test_the_known_parsers_and_argv_carry_no_secret() -> None:
    assert "hermes" in vllm.TOOL_PARSERS
    argv = vllm.argv(spec(), "assistant", vllm.ModelFiles(model="/m"))
    assert not any("key" in a.lower() for a in argv)


def test_the_probe_deployment_probes_the_stable_service_and_is_no_backend_of_it() -> None:
    s = spec(monitoring={"probe": {"enabled": True, "data": "s3://kubetune/probes/mine.jsonl"}})
    t = target(s)
    rev = source.revision(s, t, BUILD.served_name, BUILD.vllm_image)
    probe = resources.probe_deployment(s, BUILD, rev)
    args = probe["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--endpoint") + 1] == resources.endpoint("assistant", "ml")
    assert args[args.index("--data") + 1] == "s3://kubetune/probes/mine.jsonl"
    assert args[args.index("--revision") + 1] == rev and args[args.index("--suite") + 1] == "seed-tools:10"
    pod_labels = probe["spec"]["template"]["metadata"]["labels"]
    # The stable Service and the revision's Deployment select by serve and revision: the probe's pod has no revision.
    for selector in (resources.service(BUILD, rev, stable=True)["spec"]["selector"],
                     resources.deployment(s, BUILD, rev, t, 1)["spec"]["selector"]["matchLabels"]):
        assert not all(pod_labels.get(k) == v for k, v in selector.items())
    env = {e["name"]: e for e in probe["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KUBETUNE_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "serve-key"
