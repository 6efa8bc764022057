"""Pure builders: a ModelServe revision -> the Kubernetes objects that serve, measure and judge it.

    <serve>-<rev>          Deployment: init container `kubetune-job fetch` (model -> /models, verified against
                           its completeness marker), then vLLM with `vllm.argv`; probes on /health sized for slow
                           loads; a rolling update that never drops below the ready replicas
    <serve>-<rev>          Service of that revision (what the benchmark and the evaluation talk to)
    <serve>                Service clients use: it selects the serving revision
    <serve>                PodMonitor for vLLM's /metrics; KEDA ScaledObject or HPA on waiting requests
    <serve>-adapters       ConfigMap: spec.adapters' set (adapters.json); every replica's adapter agent (a second
                           container, `kubetune-job adapters`) reads it and loads the adapters into its vLLM
    <serve>-bench-<rev>    Job: `kubetune-job bench` once the revision serves
    <serve>-gate-<rev>-<s> Job: `kubetune-job evaluate --endpoint` for the promotion gate (s: the suites' digest)

Every pod follows the restricted Pod Security profile; secrets are referenced, never inlined.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kubetune_jobs.contract import adapters as adapter_contract
from kubetune_jobs.contract import env as names
from kubetune_jobs.contract.layout import ADAPTER_SET_FILE, ServeLayout, store_root
from kubetune_jobs.contract.metrics import VLLM_WAITING
from kubetune_jobs.contract.options import (
    AdaptersOptions,
    BenchOptions,
    EvaluateOptions,
    FetchOptions,
    ProbeOptions,
)
from kubetune_jobs.contract.records import AdapterSet
from kubetune_jobs.contract.store import resolve
from kubetune_jobs.contract.suites import suite_arg

from .. import naming
from ..kube import pods
from ..kube.owner import Owner
from . import api, vllm
from .source import Target

LABEL_SERVE = naming.LABEL_SERVE
LABEL_REVISION = naming.LABEL_REVISION
MODELS = "/models"
MODEL_DIR = f"{MODELS}/model"
TEMPLATES = "/templates"
VLLM_CONTAINER = "vllm"
HTTP = "http"
COMPONENT = "app.kubernetes.io/component"
PROBE_COMPONENT = "probe"
ADAPTERS_COMPONENT = "adapters"
ADAPTERS_CONTAINER = "adapters"
ADAPTERS_DIR = "/adapters"  # shared by vLLM and the agent: the agent places adapters there, vLLM loads them
ADAPTER_SET_DIR = "/etc/kubetune/adapters"  # the set's ConfigMap, in the agent's container
ADAPTERS_INTERVAL_SECONDS = 15.0
# vLLM loads weights (and on first start compiles) before /health answers: minutes for a 3B model.
STARTUP_SECONDS = 1800


@dataclass(frozen=True)
class Build:
    """What the builders need besides the spec: who owns the objects and the operator's defaults."""

    owner: Owner
    served_name: str
    jobs_image: str
    vllm_image: str
    store_endpoint: str | None = None  # the operator's default store
    pushgateway: str | None = None
    prometheus: str | None = None  # the Prometheus URL KEDA queries (autoscaling)
    shared_secret: str | None = None  # the serve's copy of the shared store's keys (kube.shared_store)

    @property
    def name(self) -> str:
        return self.owner.name

    @property
    def namespace(self) -> str:
        return self.owner.namespace


def deployment_name(serve: str, revision: str) -> str:
    return naming.dns_label(f"{serve}-{revision}")


def adapters_name(serve: str) -> str:
    return naming.dns_label(f"{serve}-adapters")


def revision_service_name(serve: str, revision: str) -> str:
    return deployment_name(serve, revision)


def bench_job_name(serve: str, revision: str) -> str:
    return naming.dns_label(f"{serve}-bench-{revision}")


def suites_digest(promotion: api.PromotionSpec) -> str:
    text = ",".join(suite_arg(s.name, s.limit) for s in promotion.suites) + f"|{promotion.max_new_tokens}"
    return hashlib.sha256(text.encode()).hexdigest()[:4]


def gate_job_name(serve: str, revision: str, promotion: api.PromotionSpec) -> str:
    return naming.dns_label(f"{serve}-gate-{revision}-{suites_digest(promotion)}")


def endpoint(service: str, namespace: str) -> str:
    """The OpenAI-compatible base URL of a Service, valid from any namespace."""
    return f"http://{service}.{namespace}.svc.cluster.local:{vllm.PORT}/v1"


def labels(b: Build, revision: str | None = None, component: str = "server") -> dict[str, str]:
    out = {**naming.serve_labels(b.name), "app.kubernetes.io/name": "vllm", "app.kubernetes.io/component": component}
    if revision:
        out[LABEL_REVISION] = revision
    return out


def _meta(b: Build, name: str, revision: str | None, component: str = "server") -> dict[str, Any]:
    return {"name": name, "namespace": b.namespace, "labels": labels(b, revision, component),
            "ownerReferences": [b.owner.reference()]}


def _store_env(spec: api.ModelServeSpec, b: Build) -> list[dict[str, Any]]:
    out = []
    store = resolve(spec.storage.endpoint or b.store_endpoint, secure=spec.storage.secure, credentials={},
                    environ={})
    if store is not None:
        out.append({"name": names.S3_ENDPOINT, "value": store.endpoint})
    credentials = spec.storage.credentials_secret or b.shared_secret
    if credentials:
        out += [pods.secret_env(k, credentials) for k in names.STORE_CREDENTIALS]
    return out


def files(spec: api.ModelServeSpec, target: Target) -> vllm.ModelFiles:
    """Where the replica finds the model: fetched into /models, or a Hub id vLLM downloads itself."""
    model = MODEL_DIR if target.uri else str(target.hub)
    adapter = f"{MODEL_DIR}-adapter" if target.adapter else None
    template = None
    if spec.vllm.chat_template:
        template = f"{TEMPLATES}/chat_template.jinja"
    elif target.uri:
        template = f"{MODEL_DIR}/chat_template.jinja"  # the template the model was trained with (our export)
    return vllm.ModelFiles(model=model, chat_template=template, adapter=adapter)


def template_configmap(spec: api.ModelServeSpec, b: Build, revision: str) -> dict[str, Any] | None:
    if not spec.vllm.chat_template:
        return None
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(b, deployment_name(b.name, revision), revision),
            "data": {"chat_template.jinja": spec.vllm.chat_template}}


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": HTTP}, "periodSeconds": period, "timeoutSeconds": 5,
            "failureThreshold": failures}


def _vllm_env(spec: api.ModelServeSpec) -> list[dict[str, Any]]:
    env = [e for e in pods.scratch_env() if e["name"] != names.CACHE]
    env += [{"name": "VLLM_CACHE_ROOT", "value": f"{pods.SCRATCH}/vllm"},
            {"name": "VLLM_NO_USAGE_STATS", "value": "1"}, {"name": "DO_NOT_TRACK", "value": "1"}]
    if spec.api_key_secret:
        env.append(pods.secret_env(vllm.API_KEY_ENV, spec.api_key_secret.name, spec.api_key_secret.key))
    if spec.hub_token_secret:
        env.append(pods.secret_env(names.HF_TOKEN, spec.hub_token_secret))
    if spec.model.hub is None and not (spec.model.lora.enabled):
        env.append({"name": "HF_HUB_OFFLINE", "value": "1"})  # every file is local: never reach for a hub
    return env


def deployment(spec: api.ModelServeSpec, b: Build, revision: str, target: Target, replicas: int) -> dict[str, Any]:
    """The revision's Deployment."""
    r = spec.resources
    lab = labels(b, revision)
    f = files(spec, target)
    volumes = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": r.shm_size}},
               {"name": "models", "emptyDir": {"sizeLimit": r.model_storage}}]
    scratch_volumes, scratch_mounts = pods.scratch_volumes("20Gi")
    volumes += scratch_volumes
    mounts = [{"name": "dshm", "mountPath": "/dev/shm"}, {"name": "models", "mountPath": MODELS}, *scratch_mounts]
    if spec.vllm.chat_template:
        volumes.append({"name": "template", "configMap": {"name": deployment_name(b.name, revision)}})
        mounts.append({"name": "template", "mountPath": TEMPLATES, "readOnly": True})
    limits: dict[str, str] = {"memory": r.memory}
    if r.gpus:
        limits["nvidia.com/gpu"] = str(r.gpus)
    server = {
        "name": VLLM_CONTAINER,
        "image": spec.vllm.image or b.vllm_image,
        "imagePullPolicy": spec.images.pull_policy,
        "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
        "args": vllm.argv(spec, b.served_name, f),
        "env": _vllm_env(spec),
        "ports": [{"name": HTTP, "containerPort": vllm.PORT, "protocol": "TCP"}],
        "startupProbe": _probe("/health", 10, STARTUP_SECONDS // 10),
        "readinessProbe": _probe("/health", 5, 3),
        "livenessProbe": _probe("/health", 15, 6),
        "resources": {"requests": {"cpu": r.cpu, "memory": r.memory, "ephemeral-storage": "20Gi"}, "limits": limits},
        "securityContext": pods.container_security(),
        "volumeMounts": mounts,
    }
    pod: dict[str, Any] = {"containers": [server], "volumes": volumes, "securityContext": pods.pod_security(),
                           "automountServiceAccountToken": False, "enableServiceLinks": False,
                           "terminationGracePeriodSeconds": 60}
    if vllm.runtime_adapters(spec):
        server["env"].append({"name": adapter_contract.RUNTIME_UPDATES_ENV, "value": "True"})
        mounts.append({"name": "adapters", "mountPath": ADAPTERS_DIR, "readOnly": True})  # the agent writes
        # The ConfigMap is optional: a pod that starts before the operator wrote it serves the base meanwhile.
        volumes += [{"name": "adapters", "emptyDir": {"sizeLimit": r.model_storage}},
                    {"name": "adapter-set", "configMap": {"name": adapters_name(b.name), "optional": True}}]
        pod["containers"].append(adapter_agent(spec, b, scratch_mounts))
    if target.uri:
        fetch = FetchOptions(model=target.uri, dest=MODEL_DIR, adapter=target.adapter)
        pod["initContainers"] = [{
            "name": "fetch-model", "image": spec.images.jobs or b.jobs_image, "imagePullPolicy": spec.images.pull_policy,
            "command": ["kubetune-job"], "args": fetch.command_line(),
            "env": _store_env(spec, b) + pods.scratch_env(),
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
            "securityContext": pods.container_security(),
            "volumeMounts": [{"name": "models", "mountPath": MODELS}, *scratch_mounts],
        }]
    pod.update(pods.placement(r.node_selector, r.tolerations, r.priority_class_name))
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {**_meta(b, deployment_name(b.name, revision), revision),
                     "annotations": {naming.ANNOTATION_MODEL: target.source,
                                     **({naming.ANNOTATION_DIGEST: target.digest} if target.digest else {})}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {LABEL_SERVE: lab[LABEL_SERVE], LABEL_REVISION: revision}},
            # Never below the ready replicas: a new pod must be Ready before an old one goes.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "progressDeadlineSeconds": STARTUP_SECONDS + 600,
            "template": {"metadata": {"labels": lab}, "spec": pod},
        },
    }


def adapter_agent(spec: api.ModelServeSpec, b: Build, scratch_mounts: list[dict[str, Any]]) -> dict[str, Any]:
    """The replica's adapter agent: it keeps its vLLM's runtime adapters equal to the set, restarts included
    (it runs beside vLLM for the pod's life), and writes what it reached under the serve's results."""
    options = AdaptersOptions(endpoint=f"http://127.0.0.1:{vllm.PORT}", set=f"{ADAPTER_SET_DIR}/{ADAPTER_SET_FILE}",
                              cache=ADAPTERS_DIR, output=results_layout(spec, b.namespace, b.name).adapter_replicas,
                              replica="$(POD_NAME)", interval_seconds=ADAPTERS_INTERVAL_SECONDS)
    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, *_client_env(spec, b)]
    return {"name": ADAPTERS_CONTAINER, "image": spec.images.jobs or b.jobs_image,
            "imagePullPolicy": spec.images.pull_policy, "command": ["kubetune-job"], "args": options.command_line(),
            "env": env,
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
            "securityContext": pods.container_security(),
            "volumeMounts": [{"name": "adapters", "mountPath": ADAPTERS_DIR},
                             {"name": "adapter-set", "mountPath": ADAPTER_SET_DIR, "readOnly": True},
                             *scratch_mounts]}


def adapters_configmap(b: Build, the_set: AdapterSet) -> dict[str, Any]:
    """The set every replica loads. Its volume is not part of the pod template's identity: the set changes
    without a rollout, and kubelet refreshes the mounted file (about a minute)."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(b, adapters_name(b.name), None, ADAPTERS_COMPONENT),
            "data": {ADAPTER_SET_FILE: json.dumps(the_set.dump(), indent=1, sort_keys=True)}}


def service(b: Build, revision: str, *, stable: bool) -> dict[str, Any]:
    """The stable Service (`<serve>`, what clients use) or a revision's own (`<serve>-<rev>`)."""
    name = b.name if stable else revision_service_name(b.name, revision)
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": _meta(b, name, None if stable else revision),
        "spec": {"type": "ClusterIP", "selector": {LABEL_SERVE: naming.dns_label(b.name), LABEL_REVISION: revision},
                 "ports": [{"name": HTTP, "port": vllm.PORT, "targetPort": HTTP, "protocol": "TCP"}]},
    }


def pod_monitor(spec: api.ModelServeSpec, b: Build) -> dict[str, Any]:
    """Prometheus Operator's PodMonitor for every revision's /metrics (labels tell revisions apart)."""
    meta = _meta(b, b.name, None, "metrics")
    meta["labels"].update(spec.monitoring.labels)
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": meta,
            "spec": {"selector": {"matchLabels": {LABEL_SERVE: naming.dns_label(b.name)}},
                     # vLLM labels its series with model_name; these say which serve and revision.
                     "podTargetLabels": [LABEL_SERVE, LABEL_REVISION],
                     "podMetricsEndpoints": [{"port": HTTP, "path": "/metrics", "interval": "15s"}]}}


WAITING_METRIC = VLLM_WAITING
# The same gauge as the custom-metrics API names it (prometheus-adapter rewrites ':' to '_').
WAITING_CUSTOM_METRIC = VLLM_WAITING.replace(":", "_")


def scaled_object(spec: api.ModelServeSpec, b: Build, revision: str) -> dict[str, Any]:
    """KEDA: scale the serving revision's Deployment on its waiting requests."""
    a = spec.autoscaling
    query = f'sum({WAITING_METRIC}{{namespace="{b.namespace}",model_name="{b.served_name}"}})'
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": _meta(b, b.name, None, "autoscaler"),
            "spec": {"scaleTargetRef": {"name": deployment_name(b.name, revision)},
                     "minReplicaCount": a.min_replicas, "maxReplicaCount": a.max_replicas,
                     "triggers": [{"type": "prometheus", "metadata": {
                         "serverAddress": b.prometheus or "", "query": query,
                         "threshold": str(a.target_waiting_requests)}}]}}


def hpa(spec: api.ModelServeSpec, b: Build, revision: str) -> dict[str, Any]:
    """An HPA on the waiting requests per pod, through the custom-metrics API (prometheus-adapter)."""
    a = spec.autoscaling
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": _meta(b, b.name, None, "autoscaler"),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": deployment_name(b.name, revision)},
                     "minReplicas": a.min_replicas, "maxReplicas": a.max_replicas,
                     "metrics": [{"type": "Pods", "pods": {
                         "metric": {"name": WAITING_CUSTOM_METRIC},
                         "target": {"type": "AverageValue", "averageValue": str(a.target_waiting_requests)}}}]}}


def _client_env(spec: api.ModelServeSpec, b: Build) -> list[dict[str, Any]]:
    """A `kubetune-job` that talks to the serve: the store, scratch, and the API key by reference."""
    env = _store_env(spec, b) + pods.scratch_env()
    if spec.api_key_secret:
        env.append(pods.secret_env(names.API_KEY, spec.api_key_secret.name, spec.api_key_secret.key))
    return env


def _job(spec: api.ModelServeSpec, b: Build, name: str, revision: str, component: str, args: list[str]) -> dict[str, Any]:
    env = _client_env(spec, b)
    volumes, mounts = pods.scratch_volumes("10Gi")
    container = {"name": "kubetune-job", "image": spec.images.jobs or b.jobs_image,
                 "imagePullPolicy": spec.images.pull_policy, "command": ["kubetune-job"], "args": args, "env": env,
                 "resources": {"requests": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "10Gi"},
                               "limits": {"memory": "4Gi"}},
                 "securityContext": pods.container_security(), "volumeMounts": mounts}
    lab = labels(b, revision, component)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _meta(b, name, revision, component),
            "spec": {"backoffLimit": 2, "activeDeadlineSeconds": 7200, "ttlSecondsAfterFinished": 604800,
                     "template": {"metadata": {"labels": lab},
                                  "spec": {"restartPolicy": "Never", "containers": [container], "volumes": volumes,
                                           "securityContext": pods.pod_security(),
                                           "automountServiceAccountToken": False, "enableServiceLinks": False}}}}


def results_layout(spec: api.ModelServeSpec, namespace: str, serve: str) -> ServeLayout:
    return ServeLayout.of(store_root(spec.storage.bucket), namespace, serve)


def bench_job(spec: api.ModelServeSpec, b: Build, revision: str) -> dict[str, Any]:
    layout = results_layout(spec, b.namespace, b.name)
    bm = spec.benchmark
    options = BenchOptions(endpoint=endpoint(revision_service_name(b.name, revision), b.namespace),
                           model=b.served_name, concurrency=tuple(bm.concurrency), requests=bm.requests,
                           max_tokens=bm.max_tokens, output=layout.bench(revision), pushgateway=b.pushgateway,
                           serve_name=b.name, revision=revision, namespace=b.namespace)
    return _job(spec, b, bench_job_name(b.name, revision), revision, "benchmark", options.command_line())


def probe_name(serve: str) -> str:
    return naming.dns_label(f"{serve}-probe")


def probe_deployment(spec: api.ModelServeSpec, b: Build, revision: str) -> dict[str, Any]:
    """The live probe of the serving revision: one `kubetune-job probe` replica sending its set to the stable
    Service every interval. Its command names the revision, so a promotion rolls it (its figures are per revision)."""
    pr = spec.monitoring.probe
    options = ProbeOptions(endpoint=endpoint(b.name, b.namespace), model=b.served_name,
                           suite=tuple(suite_arg(s.name, s.limit) for s in pr.suites), data=pr.data,
                           interval_seconds=float(pr.interval_seconds), max_new_tokens=pr.max_new_tokens,
                           output=results_layout(spec, b.namespace, b.name).probe(revision), pushgateway=b.pushgateway,
                           serve_name=b.name, revision=revision, namespace=b.namespace)
    env = _client_env(spec, b)
    volumes, mounts = pods.scratch_volumes("1Gi")
    # No revision label: the Services and the revisions' Deployments select pods by serve and revision.
    lab = {**labels(b, None, PROBE_COMPONENT), "app.kubernetes.io/name": "kubetune-probe"}
    container = {"name": "kubetune-job", "image": spec.images.jobs or b.jobs_image,
                 "imagePullPolicy": spec.images.pull_policy, "command": ["kubetune-job"],
                 "args": options.command_line(), "env": env,
                 "resources": {"requests": {"cpu": "100m", "memory": "512Mi", "ephemeral-storage": "1Gi"},
                               "limits": {"memory": "1Gi"}},
                 "securityContext": pods.container_security(), "volumeMounts": mounts}
    pod: dict[str, Any] = {"containers": [container], "volumes": volumes, "securityContext": pods.pod_security(),
                           "automountServiceAccountToken": False, "enableServiceLinks": False,
                           "terminationGracePeriodSeconds": 30}
    meta = {**_meta(b, probe_name(b.name), None, PROBE_COMPONENT), "labels": lab}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": 1,
                     "selector": {"matchLabels": {LABEL_SERVE: lab[LABEL_SERVE], COMPONENT: PROBE_COMPONENT}},
                     "template": {"metadata": {"labels": lab}, "spec": pod}}}


def gate_job(spec: api.ModelServeSpec, b: Build, revision: str, target_datasets: tuple[str, ...]) -> dict[str, Any]:
    layout = results_layout(spec, b.namespace, b.name)
    p = spec.promotion
    options = EvaluateOptions(endpoint=endpoint(revision_service_name(b.name, revision), b.namespace),
                              model=b.served_name, suite=tuple(suite_arg(s.name, s.limit) for s in p.suites),
                              data=target_datasets, output=layout.eval(revision), max_new_tokens=p.max_new_tokens,
                              run_name=b.name, model_label=revision, pushgateway=b.pushgateway, serve_name=b.name,
                              namespace=b.namespace)
    return _job(spec, b, gate_job_name(b.name, revision, p), revision, "evaluation", options.command_line())
