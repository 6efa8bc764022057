"""The Helm chart: `helm lint`, `helm template` in several configurations, every built-in object validated
with kubernetes-validate; the dashboard only queries metrics that exist."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from kubetune_operator import metrics as operator_metrics

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubetune"
HELM = ROOT / ".venv" / "bin" / "helm"
K8S_VERSION = kubernetes_validate.latest_version()
CONFIGS = {
    "defaults": [],
    "everything": ["--set", "minio.enabled=true", "--set", "minio.rootPassword=s3cret-value", "--set",
                   "pushgateway.enabled=true", "--set", "serviceMonitor.enabled=true", "--set",
                   "storage.endpoint=http://store:9000"],
    "namespaced": ["--set", "operator.watchNamespaces={team-a,team-b}", "--set", "dashboard.enabled=false"],
}

pytestmark = pytest.mark.skipif(not HELM.exists(), reason="helm is installed into .venv by scripts/bootstrap.sh")


def helm(*args: str) -> str:
    out = subprocess.run([str(HELM), *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def render(config: str) -> list[dict]:
    text = helm("template", "kt", str(CHART), "--namespace", "kubetune", "--include-crds", *CONFIGS[config])
    return [d for d in yaml.safe_load_all(text) if d]


def test_lint() -> None:
    helm("lint", "--strict", str(CHART), "--set", "minio.enabled=true", "--set", "minio.rootPassword=x")


@pytest.mark.parametrize("config", list(CONFIGS))
def test_rendered_objects_validate(config: str) -> None:
    docs = render(config)
    kinds = [d["kind"] for d in docs]
    assert "Deployment" in kinds and "CustomResourceDefinition" in kinds
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com"):
            continue  # not a built-in kind
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_operator_deployment_and_rbac() -> None:
    docs = render("everything")
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "kt-operator")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KUBETUNE_S3_ENDPOINT"]["value"] == "http://store:9000"
    assert "secretKeyRef" in env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    rules = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert rules[("", "secrets")] == {"get"}
    assert rules[("batch", "jobs")] >= {"create", "get", "list", "watch"} and "delete" not in rules[("batch", "jobs")]
    assert ("kubetune.io", "finetuneruns/status") in rules and ("kubetune.io", "finetuneruns/finalizers") in rules
    assert all("*" not in verbs for verbs in rules.values())
    namespaced = render("namespaced")
    assert sorted(d["metadata"]["namespace"] for d in namespaced if d["kind"] == "Role") == ["team-a", "team-b"]
    assert not any(d["kind"] == "ClusterRole" for d in namespaced)


def test_minio_requires_a_password() -> None:
    out = subprocess.run([str(HELM), "template", "kt", str(CHART), "--set", "minio.enabled=true"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "minio.rootPassword is required" in out.stderr


def _pushed_names() -> set[str]:
    from kubetune_jobs.evaluate import metrics as eval_metrics
    from kubetune_jobs.train import metrics as train_metrics

    names = {v for k, v in vars(train_metrics).items() if k.isupper() and isinstance(v, str)
             and v.startswith("kubetune_train_")}
    names |= {name for name, _ in eval_metrics.GAUGES.values()}
    return names


def test_dashboard_queries_only_existing_metrics() -> None:
    dash = json.loads((CHART / "dashboards" / "kubetune.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(kubetune_[a-z_]+?)(?:_bucket)?\b(?=[{\[)\s/]|$)", e)}
    operator_names = {m._name for m in (operator_metrics.RUNS, operator_metrics.STEP_SECONDS,
                                        operator_metrics.RECONCILE_ERRORS, operator_metrics.EVAL_ACCURACY)}
    operator_names |= {n + "_total" for n in operator_names}
    known = _pushed_names() | operator_names
    assert used and used <= known, used - known
    for needed in ("kubetune_train_tokens_per_second", "kubetune_train_loss", "kubetune_eval_accuracy",
                   "kubetune_eval_false_call_rate", "kubetune_operator_runs"):
        assert needed in used
    cm = next(d for d in render("defaults") if d["kind"] == "ConfigMap")
    assert json.loads(cm["data"]["kubetune.json"])["uid"] == "kubetune"
