"""The Helm-free install (manifests/kustomization.yaml): the committed YAML equals a fresh render of the
chart, `kubectl kustomize manifests/` builds, and every object it yields validates and runs "restricted"."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from support.pod_security import pod_specs, violations

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = Path(shutil.which("kubectl") or ROOT / ".venv" / "bin" / "kubectl")
HELM = Path(shutil.which("helm") or ROOT / ".venv" / "bin" / "helm")

pytestmark = pytest.mark.skipif(not (KUBECTL.exists() and HELM.exists()),
                                reason="helm and kubectl are installed into .venv by scripts/bootstrap.sh")


def test_committed_yaml_is_a_fresh_render() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import render_manifests
    finally:
        sys.path.pop(0)
    for path, text in render_manifests.render().items():
        assert path.exists() and path.read_text() == text, f"{path} is stale: run scripts/render_manifests.py"
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "render_manifests.py"), "--check"],
                           capture_output=True, text=True, env={**os.environ, "PATH": f"{HELM.parent}:{os.environ['PATH']}"})
    assert check.returncode == 0, check.stderr


def test_kustomize_builds_valid_restricted_objects() -> None:
    out = subprocess.run([str(KUBECTL), "kustomize", str(ROOT / "manifests")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    crds = {yaml.safe_load(p.read_text())["metadata"]["name"] for p in (ROOT / "manifests" / "crds").glob("*.yaml")}
    assert crds and {("CustomResourceDefinition", name) for name in crds} <= kinds
    assert {("Namespace", "kubetune"), ("Deployment", "kubetune-operator"), ("ServiceAccount", "kubetune-operator"),
            ("ClusterRole", "kubetune-operator"), ("ClusterRoleBinding", "kubetune-operator")} <= kinds
    version = kubernetes_validate.latest_version()
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
        assert "helm.sh/chart" not in (doc["metadata"].get("labels") or {}), doc["metadata"]["name"]
        for spec, meta in pod_specs(doc):
            assert violations(spec, meta) == [], doc["metadata"]["name"]
    namespace = next(d for d in docs if d["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] in ("Deployment", "Service", "ConfigMap")} \
        == {"kubetune"}
