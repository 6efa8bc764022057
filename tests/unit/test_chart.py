"""The Helm chart: `helm lint --strict` and `helm template` over --set cases and the values files in
charts/kubetune/ci/, every built-in object validated with kubernetes-validate, every pod template checked
against the Pod Security Standards "restricted" profile; bad values refused with a message naming the value;
the operator's environment, RBAC and NetworkPolicies per case, and what reaches a run's and a serve's Jobs
from it (the chart's Pushgateway, the shared store's keys); NOTES; the dashboard and the alerts only query
metrics that exist, and the PrometheusRule ships the promtool-tested rules with the values' overrides."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from kubetune_jobs.contract import metrics as contract_metrics
from kubetune_operator.settings import Settings
from support.pod_security import pod_specs, violations

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubetune"
HELM = Path(shutil.which("helm") or ROOT / ".venv" / "bin" / "helm")
K8S_VERSION = kubernetes_validate.latest_version()
CI_VALUES = {p.name.removesuffix("-values.yaml"): p for p in sorted((CHART / "ci").glob("*-values.yaml"))}
BAD_VALUES = sorted((ROOT / "tests" / "fixtures" / "chart").glob("bad-*.yaml"))
CONFIGS = {
    "defaults": [],
    "everything": ["--set", "minio.enabled=true", "--set", "minio.rootPassword=s3cret-value", "--set",
                   "pushgateway.enabled=true", "--set", "serviceMonitor.enabled=true", "--set",
                   "prometheusRule.enabled=true", "--set", "storage.endpoint=http://store:9000"],
    "namespaced": ["--set", "operator.watchNamespaces={team-a,team-b}", "--set", "dashboard.enabled=false"],
    **{f"ci/{name}": ["-f", str(path)] for name, path in CI_VALUES.items()},
}
NOT_BUILT_IN = ("monitoring.coreos.com",)

pytestmark = pytest.mark.skipif(not HELM.exists(), reason="helm is installed into .venv by scripts/bootstrap.sh")


def helm(*args: str) -> str:
    out = subprocess.run([str(HELM), *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def render(config: str, namespace: str = "kubetune", *extra: str) -> list[dict]:
    text = helm("template", "kt", str(CHART), "--namespace", namespace, "--include-crds", *CONFIGS[config], *extra)
    return [d for d in yaml.safe_load_all(text) if d]


def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def operator_env(docs: list[dict]) -> dict[str, dict]:
    dep = find(docs, "Deployment", "kt-operator")[0]
    return {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}


def rules_of(role: dict) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                out.setdefault((g, r), set()).update(rule["verbs"])
    return out


def test_lint() -> None:
    helm("lint", "--strict", str(CHART), "--set", "minio.enabled=true", "--set", "minio.rootPassword=x-long-enough")


@pytest.mark.parametrize("name", list(CI_VALUES))
def test_lint_ci_values(name: str) -> None:
    assert "0 chart(s) failed" in helm("lint", "--strict", str(CHART), "-f", str(CI_VALUES[name]))


@pytest.mark.parametrize("config", list(CONFIGS))
def test_rendered_objects_validate(config: str) -> None:
    docs = render(config)
    kinds = [d["kind"] for d in docs]
    assert "Deployment" in kinds and "CustomResourceDefinition" in kinds
    for doc in docs:
        if doc["apiVersion"].startswith(NOT_BUILT_IN):
            continue  # not a built-in kind
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_every_pod_is_restricted_probed_and_read_only(config: str) -> None:
    docs = render(config)
    pods = [(d["metadata"]["name"], spec, meta) for d in docs for spec, meta in pod_specs(d)]
    assert pods
    for name, spec, meta in pods:
        assert violations(spec, meta) == [], name
        for c in spec["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert "httpGet" in c[probe], (name, probe)
            mounted = {m["name"] for m in c.get("volumeMounts", [])}
            assert {v["name"] for v in spec.get("volumes", [])} <= mounted, name


@pytest.mark.parametrize("path", BAD_VALUES, ids=[p.stem for p in BAD_VALUES])
def test_bad_values_are_refused_naming_the_value(path: Path) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# refused: ")
    secret = (yaml.safe_load(path.read_text()).get("minio") or {}).get("rootPassword")
    for command in (["lint", "--strict", str(CHART)], ["template", "kt", str(CHART)]):
        out = subprocess.run([str(HELM), *command, "-f", str(path)], capture_output=True, text=True)
        assert out.returncode != 0, (command, out.stdout)
        assert expected in out.stdout + out.stderr, (command, out.stdout + out.stderr)
        if secret:
            assert secret not in out.stdout + out.stderr


MINIO = "http://kt-minio.kubetune.svc.cluster.local:9000"
PUSHGATEWAY = "http://kt-pushgateway.kubetune.svc.cluster.local:9091"
ENV_CASES = {
    # config: (KUBETUNE_S3_ENDPOINT, KUBETUNE_STORE_SECRET, KUBETUNE_PUSHGATEWAY, KUBETUNE_SHARE_STORE)
    "ci/default": (None, None, None, "false"),
    "ci/dev": (MINIO, "kt-minio", PUSHGATEWAY, "true"),
    "ci/namespaced": (MINIO, "kubetune-minio-keys", "http://pushgateway.monitoring.svc.cluster.local:9091", "true"),
    "ci/external-storage": ("https://s3.eu-west-1.amazonaws.com", "kubetune-s3", None, "false"),
    "everything": ("http://store:9000", "kt-minio", PUSHGATEWAY, "false"),
}


@pytest.mark.parametrize("config", list(ENV_CASES))
def test_operator_environment(config: str) -> None:
    endpoint, secret, pushgateway, share = ENV_CASES[config]
    env = operator_env(render(config))
    value = {name: e.get("value") for name, e in env.items()}
    assert value.get("KUBETUNE_S3_ENDPOINT") == endpoint
    assert value.get("KUBETUNE_STORE_SECRET") == secret
    assert value.get("KUBETUNE_PUSHGATEWAY") == pushgateway
    assert value["KUBETUNE_SHARE_STORE"] == share
    assert value["KUBETUNE_RESYNC_SECONDS"] == "30"
    assert env["KUBETUNE_OPERATOR_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert value["KUBETUNE_JOBS_IMAGE"] == "ghcr.io/kubetune/kubetune-jobs:0.1.0"
    assert re.fullmatch(r"vllm/vllm-openai:v\d+\.\d+\.\d+", value["KUBETUNE_VLLM_IMAGE"])
    # The operator reads the store's Secret through the API (kube.shared_store): its keys are never in its env.
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)


def test_store_and_pushgateway_urls_follow_the_release_namespace() -> None:
    value = {n: e.get("value") for n, e in operator_env(render("ci/dev", namespace="ml-platform")).items()}
    assert value["KUBETUNE_S3_ENDPOINT"] == "http://kt-minio.ml-platform.svc.cluster.local:9000"
    assert value["KUBETUNE_PUSHGATEWAY"] == "http://kt-pushgateway.ml-platform.svc.cluster.local:9091"


def test_operator_deployment_and_rbac() -> None:
    docs = render("everything")
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "kt-operator")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KUBETUNE_S3_ENDPOINT"]["value"] == "http://store:9000"
    assert env["KUBETUNE_STORE_SECRET"]["value"] == "kt-minio" and "AWS_SECRET_ACCESS_KEY" not in env
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    rules = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert rules[("", "secrets")] == {"get"}
    assert rules[("batch", "jobs")] >= {"create", "get", "list", "watch"} and "delete" not in rules[("batch", "jobs")]
    assert ("kubetune.io", "finetuneruns/status") in rules and ("kubetune.io", "finetuneruns/finalizers") in rules
    assert all("*" not in verbs for verbs in rules.values())
    namespaced = render("namespaced")
    assert sorted(d["metadata"]["namespace"] for d in namespaced if d["kind"] == "Role") == ["team-a", "team-b"]
    assert not any(d["kind"] == "ClusterRole" for d in namespaced)


MODELSERVE_OBJECTS = [("apps", "deployments"), ("", "services"), ("batch", "jobs"),
                      ("monitoring.coreos.com", "podmonitors"), ("monitoring.coreos.com", "servicemonitors"),
                      ("keda.sh", "scaledobjects"), ("autoscaling", "horizontalpodautoscalers"), ("", "secrets")]


@pytest.mark.parametrize("config", list(CONFIGS))
def test_rbac_is_least_privilege(config: str) -> None:
    docs = render(config)
    roles = find(docs, "ClusterRole") + find(docs, "Role")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        rules = rules_of(role)
        # Secrets: never listed or watched, never deleted (owner references clean up the copies).
        assert not rules.get(("", "secrets"), set()) & {"list", "watch", "delete", "deletecollection"}
        assert not any("update" in verbs for (g, r), verbs in rules.items() if not r.endswith("/finalizers"))
    main = [r for r in roles if r["metadata"]["name"] == "kt-operator"]
    for role in main:
        rules = rules_of(role)
        for kind in ("finetuneruns", "modelserves"):
            assert rules[("kubetune.io", kind)] == {"get", "list", "watch", "patch"}
            assert rules[("kubetune.io", f"{kind}/status")] == {"patch"}
            assert rules[("kubetune.io", f"{kind}/finalizers")] == {"update"}
        for group_resource in MODELSERVE_OBJECTS:
            assert {"get"} <= rules[group_resource], group_resource
            if group_resource != ("", "secrets"):
                assert "create" in rules[group_resource], group_resource


def test_secret_access_per_mode() -> None:
    # Cluster-wide without sharing: read only.
    assert rules_of(find(render("ci/default"), "ClusterRole")[0])[("", "secrets")] == {"get"}
    assert rules_of(find(render("ci/external-storage"), "ClusterRole")[0])[("", "secrets")] == {"get"}
    # Cluster-wide, shared store: the copies are created and refreshed.
    assert rules_of(find(render("ci/dev"), "ClusterRole")[0])[("", "secrets")] == {"get", "create", "patch"}
    # Namespaced: nothing cluster-wide; the watched namespaces get the copies; the store's Secret is
    # readable by name in the release namespace and nowhere else.
    docs = render("ci/namespaced")
    assert not find(docs, "ClusterRole") and not find(docs, "ClusterRoleBinding")
    watched = {r["metadata"]["namespace"]: rules_of(r) for r in find(docs, "Role", "kt-operator")}
    assert sorted(watched) == ["team-a", "team-b"]
    assert all(rules[("", "secrets")] == {"get", "create", "patch"} for rules in watched.values())
    assert not any(("", "namespaces") in rules for rules in watched.values())
    store = find(docs, "Role", "kt-operator-store")[0]
    assert store["metadata"]["namespace"] == "kubetune"
    assert store["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["kubetune-minio-keys"],
                               "verbs": ["get"]}]
    for binding in find(docs, "RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kt-operator", "namespace": "kubetune"}]
        assert binding["roleRef"]["name"] == binding["metadata"]["name"]


def _peers(policy: dict, direction: str) -> list[tuple[list, list]]:
    key = "from" if direction == "ingress" else "to"
    return [(rule[key], rule["ports"]) for rule in policy["spec"][direction]]


def test_network_policies() -> None:
    assert not find(render("ci/default"), "NetworkPolicy")
    dev = render("ci/dev")
    op = find(dev, "NetworkPolicy", "kt-operator")[0]
    egress = {tuple(p["port"] for p in ports): peers for peers, ports in _peers(op, "egress")}
    assert set(egress) == {(53, 53), (443, 6443), (9000,), (9091,)}
    assert egress[(9000,)] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "kt",
                                                                "app.kubernetes.io/component": "minio"}}}]
    assert [p["port"] for _, ports in _peers(op, "ingress") for p in ports] == [8080]
    minio = find(dev, "NetworkPolicy", "kt-minio")[0]
    assert minio["spec"]["policyTypes"] == ["Ingress", "Egress"] and "egress" not in minio["spec"]
    [(peers, ports)] = _peers(minio, "ingress")
    assert ports == [{"protocol": "TCP", "port": 9000}]
    assert {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "kubetune"}}} in peers
    pushgateway = find(dev, "NetworkPolicy", "kt-pushgateway")[0]
    [(peers, _)] = _peers(pushgateway, "ingress")
    assert {"app.kubernetes.io/name": "prometheus"} in [p["podSelector"].get("matchLabels") for p in peers]
    # Namespaced: the store answers only the watched namespaces (and the operator).
    [(peers, _)] = _peers(find(render("ci/namespaced"), "NetworkPolicy", "kt-minio")[0], "ingress")
    namespaces = [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in peers
                  if "namespaceSelector" in p]
    assert namespaces == ["team-a", "team-b"]
    # External store: the operator may reach its addresses on the endpoint's port, the API on the given ones.
    ext = find(render("ci/external-storage"), "NetworkPolicy", "kt-operator")[0]
    egress = [(peers, [p["port"] for p in ports]) for peers, ports in _peers(ext, "egress")]
    assert egress[1:] == [([{"ipBlock": {"cidr": "10.0.0.1/32"}}], [443]),
                          ([{"ipBlock": {"cidr": "52.218.0.0/17"}}], [443])]


def test_existing_secrets_pull_secrets_and_service_account_annotations() -> None:
    docs = render("ci/namespaced")
    assert not find(docs, "Secret")  # minio.existingSecret: the chart makes none
    minio = find(docs, "Deployment", "kt-minio")[0]["spec"]["template"]["spec"]
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in minio["containers"][0]["env"]}
    assert refs == {"kubetune-minio-keys"}
    for d in docs:
        for spec, _ in pod_specs(d):
            assert spec["imagePullSecrets"] == [{"name": "registry-credentials"}], d["metadata"]["name"]
    sa = find(docs, "ServiceAccount", "kt-operator")[0]
    assert sa["metadata"]["annotations"] == {
        "iam.gke.io/gcp-service-account": "kubetune-operator@example-project.iam.gserviceaccount.com"}
    ext = render("ci/external-storage")
    assert not find(ext, "Secret") and not find(ext, "Deployment", "kt-minio")
    image = find(ext, "Deployment", "kt-operator")[0]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "ghcr.io/kubetune/kubetune-operator@sha256:" + "0" * 64
    dev = render("ci/dev")
    for name in ("kt-minio", "kt-pushgateway"):  # they never call the API
        assert find(dev, "Deployment", name)[0]["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    [secret] = find(dev, "Secret")
    assert secret["metadata"]["name"] == "kt-minio" and set(secret["stringData"]) == {"AWS_ACCESS_KEY_ID",
                                                                                     "AWS_SECRET_ACCESS_KEY"}
    assert all("imagePullSecrets" not in spec for d in dev for spec, _ in pod_specs(d))


def test_minio_requires_a_password() -> None:
    out = subprocess.run([str(HELM), "template", "kt", str(CHART), "--set", "minio.enabled=true"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "minio.rootPassword is required" in out.stderr


def test_notes_say_what_to_do_next() -> None:
    out = helm("install", "kt", str(CHART), "--namespace", "kubetune", "--dry-run=client", *CONFIGS["ci/dev"])
    notes = out[out.index("NOTES:"):]
    for line in ("kubectl apply -f manifests/examples/quickstart.yaml", "kubectl get finetuneruns",
                 "kubectl get modelserves", "ConfigMap kubetune/kt-dashboard",
                 "kubectl apply --server-side --force-conflicts -f charts/kubetune/crds/", MINIO, PUSHGATEWAY):
        assert line in notes, line
    assert "dev-only-password" not in notes


DASHBOARD = json.loads((CHART / "dashboards" / "kubetune.json").read_text())
RULES = CHART / "alerts" / "kubetune.rules.yaml"
NAME = re.compile(r"\b((?:kubetune_|vllm:)[a-z0-9_:]+)")


def names_in(expr: str) -> set[str]:
    return set(NAME.findall(expr))


def test_dashboard_and_alerts_query_only_metrics_that_exist() -> None:
    known = {series for metric in contract_metrics.ALL for series in metric.series}
    known |= set(contract_metrics.VLLM) | {f"{h}_{s}" for h in contract_metrics.VLLM_HISTOGRAMS
                                           for s in ("bucket", "sum", "count")}
    exprs = [t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in DASHBOARD["templating"]["list"] if v["type"] == "query"]
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    used = {n for e in exprs + [r["expr"] for r in rules] for n in names_in(e)}
    assert used and used <= known, used - known
    for needed in (contract_metrics.TRAIN_TOKENS, contract_metrics.EVAL_ACCURACY, contract_metrics.RUN_PHASE,
                   contract_metrics.SERVE_DECISIONS, contract_metrics.BENCH_OUTPUT_THROUGHPUT):
        assert needed.name in used
    assert {"vllm:time_to_first_token_seconds_bucket", "vllm:num_requests_waiting"} <= used
    cm = next(d for d in render("defaults") if d["kind"] == "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["kubetune.json"]) == DASHBOARD


def test_jobset_setting_reaches_the_operator_and_its_rbac() -> None:
    """Multi-node training as JobSets is opt-in (the CRD must exist): the env var and the RBAC follow it."""
    off = render("defaults")
    on = [d for d in yaml.safe_load_all(helm("template", "kt", str(CHART), "--namespace", "kubetune",
                                             "--set", "operator.jobset=true")) if d]
    assert operator_env(off)["KUBETUNE_JOBSET"]["value"] == "false"
    assert operator_env(on)["KUBETUNE_JOBSET"]["value"] == "true"
    assert ("jobset.x-k8s.io", "jobsets") not in rules_of(find(off, "ClusterRole", "kt-operator")[0])
    rules = rules_of(find(on, "ClusterRole", "kt-operator")[0])
    assert rules[("jobset.x-k8s.io", "jobsets")] == {"get", "list", "watch", "create", "patch"}
    assert {"create", "get"} <= rules[("", "services")]  # the headless Service of an Indexed Job's group


def test_dashboard_rows_and_variables() -> None:
    rows = [p["title"] for p in DASHBOARD["panels"] if p["type"] == "row"]
    assert rows == ["Runs", "Training", "Evaluation", "Serving: vLLM", "Serving: kubetune", "Tool-call health (live probe)",
                    "Adapters (spec.adapters)"]
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert {"namespace", "run", "model_name"} <= set(variables)
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for p in DASHBOARD["panels"]:
        for t in p.get("targets", []):
            assert "$namespace" in t["expr"], (p["title"], t["expr"])  # every query follows the namespace


def test_service_monitors_keep_the_namespaces_our_series_name() -> None:
    monitors = {d["metadata"]["name"]: d for d in render("ci/dev") if d["kind"] == "ServiceMonitor"}
    assert set(monitors) == {"kt-operator", "kt-pushgateway"}
    for monitor in monitors.values():
        assert [e["honorLabels"] for e in monitor["spec"]["endpoints"]] == [True]


def prometheus_rule(*values: str) -> dict:
    text = helm("template", "kt", str(CHART), "--set", "prometheusRule.enabled=true", *values,
                "-s", "templates/prometheusrule.yaml")
    return yaml.safe_load(text)


def test_prometheus_rule_ships_the_tested_rules_with_overrides(tmp_path: Path) -> None:
    assert not [d for d in render("defaults") if d["kind"] == "PrometheusRule"]  # optional
    shipped = yaml.safe_load(RULES.read_text())["groups"]
    assert prometheus_rule()["spec"]["groups"] == shipped
    changed = prometheus_rule("--set", "prometheusRule.rules.KubetuneRunStalled.for=3h", "--set",
                              "prometheusRule.rules.KubetuneWaitingRequestsGrowing.enabled=false", "--set",
                              "prometheusRule.rules.KubetuneRunFailed.labels.severity=critical", "--set",
                              "prometheusRule.labels.release=prom")
    assert changed["metadata"]["labels"]["release"] == "prom"
    rules = {r["alert"]: r for g in changed["spec"]["groups"] for r in g["rules"]}
    assert rules["KubetuneRunStalled"]["for"] == "3h" and "KubetuneWaitingRequestsGrowing" not in rules
    assert rules["KubetuneRunFailed"]["labels"] == {"severity": "critical"}
    assert rules["KubetuneRunFailed"]["expr"] == next(r for g in shipped for r in g["rules"]
                                                      if r["alert"] == "KubetuneRunFailed")["expr"]
    rendered = tmp_path / "rules.yaml"
    rendered.write_text(yaml.safe_dump({"groups": changed["spec"]["groups"]}))
    out = subprocess.run(["promtool", "check", "rules", str(rendered)], capture_output=True, text=True)
    kept = sum(len(g["rules"]) for g in shipped) - 1  # one disabled
    assert out.returncode == 0 and f"SUCCESS: {kept} rules found" in out.stdout, out.stdout + out.stderr
    # The values schema knows every alert by name (and refuses others).
    schema = json.loads((CHART / "values.schema.json").read_text())
    names = schema["properties"]["prometheusRule"]["properties"]["rules"]["propertyNames"]["enum"]
    assert sorted(names) == sorted(r["alert"] for g in shipped for r in g["rules"])
    bad = subprocess.run([str(HELM), "template", "kt", str(CHART), "--set", "prometheusRule.rules.NoSuch.for=1m"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "NoSuch" in bad.stderr


def _operator_settings(config: str, namespace: str, *extra: str) -> Settings:
    """The operator's Settings exactly as its pod would read them from the rendered Deployment."""
    env = {}
    for name, e in operator_env(render(config, namespace, *extra)).items():
        if "value" in e:
            env[name] = e["value"]
        elif e["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}:
            env[name] = namespace
        else:
            raise AssertionError(f"{name}: the test does not resolve {e['valueFrom']}")
    return Settings.from_env(env)


def test_a_runs_and_a_serves_jobs_get_the_charts_pushgateway_and_store() -> None:
    from kubetune_jobs.contract import options
    from kubetune_operator.finetunerun import api as ftr_api
    from kubetune_operator.finetunerun import jobs as ftr_jobs
    from kubetune_operator.finetunerun import plan
    from kubetune_operator.kube import shared_store
    from kubetune_operator.kube.owner import Owner
    from kubetune_operator.modelserve import api as ms_api
    from kubetune_operator.modelserve import resources

    settings = _operator_settings("ci/dev", "ml-platform")
    gateway = "http://kt-pushgateway.ml-platform.svc.cluster.local:9091"
    assert settings.pushgateway == gateway and settings.namespace == "ml-platform"
    assert settings.store_secret == "kt-minio" and settings.share_store
    # A run in another namespace that names neither a Pushgateway nor a store: the chart's, with the keys copied.
    spec = ftr_api.RESOURCE.parse_spec(yaml.safe_load((ROOT / "manifests" / "examples" / "quickstart.yaml").read_text())["spec"])
    assert spec.pushgateway is None and spec.storage.endpoint is None and spec.storage.credentials_secret is None
    assert shared_store.applies(settings, spec.storage.endpoint, spec.storage.credentials_secret)
    owner = Owner(ftr_api.KIND, "quickstart", "team-a", "uid-1")
    steps = plan.build_plan("quickstart", "team-a", spec, "s3://kubetune", uid="uid-1",
                            pushgateway=settings.pushgateway)
    pushing = [s for s in steps if s.kind in ("train", "evaluate")]
    assert pushing and {s.kind for s in pushing} == {"train", "evaluate"}
    for step in steps:
        job = ftr_jobs.job_for_step(step, spec, owner, settings.store_endpoint, shared_store.secret_name(owner))
        container = job["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["KUBETUNE_S3_ENDPOINT"]["value"] == "http://kt-minio.ml-platform.svc.cluster.local:9000"
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "quickstart-kubetune-store", "key": key}
        if step.kind == "prepare":
            continue
        parsed = options.JOBS[container["args"][0]].parse(container["args"][1:])
        assert (parsed.pushgateway, parsed.namespace, parsed.run_name) == (gateway, "team-a", "quickstart")
    # A ModelServe's benchmark and promotion-gate Jobs push there too, labelled with its namespace.
    serve = ms_api.RESOURCE.parse_spec({"model": {"uri": "s3://kubetune/models/m"}, "servedModelName": "assistant"})
    b = resources.Build(owner=Owner(ms_api.KIND, "assistant", "team-a", "uid-2"), served_name="assistant",
                        jobs_image=settings.jobs_image, vllm_image=settings.vllm_image,
                        store_endpoint=settings.store_endpoint, pushgateway=settings.pushgateway,
                        shared_secret="assistant-kubetune-store")
    for job in (resources.bench_job(serve, b, "r1"), resources.gate_job(serve, b, "r1", ())):
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        parsed = options.JOBS[args[0]].parse(args[1:])
        assert (parsed.pushgateway, parsed.namespace) == (gateway, "team-a")
    gate = options.EvaluateOptions.parse(resources.gate_job(serve, b, "r1", ())["spec"]["template"]["spec"]
                                         ["containers"][0]["args"][1:])
    assert (gate.serve_name, gate.model_label) == ("assistant", "r1")


def _images(obj: object) -> list[str]:
    """Every container image in a manifest (init containers included)."""
    if isinstance(obj, dict):
        own = [c["image"] for key in ("containers", "initContainers") for c in obj.get(key) or []]
        return own + [i for v in obj.values() for i in _images(v)]
    if isinstance(obj, list):
        return [i for v in obj for i in _images(v)]
    return []


def test_a_runs_jobs_run_the_charts_jobs_image_unless_the_run_names_its_own() -> None:
    from kubetune_operator.finetunerun import api as ftr_api
    from kubetune_operator.finetunerun import group, plan
    from kubetune_operator.kube.owner import Owner

    settings = _operator_settings("defaults", "ml-platform", "--set", "jobs.image.repository=registry.example:5000/"
                                  "team/kubetune-jobs", "--set", "jobs.image.tag=2.3.4")
    chart_image = "registry.example:5000/team/kubetune-jobs:2.3.4"
    assert settings.jobs_image == chart_image
    raw = yaml.safe_load((ROOT / "manifests" / "examples" / "quickstart.yaml").read_text())["spec"]
    owner = Owner(ftr_api.KIND, "quickstart", "team-a", "uid-1")
    own_image = "registry.example/own/jobs@sha256:" + "a" * 64
    # One node (a Job), several nodes (an Indexed Job or a JobSet): the same image rule.
    for resources in ({}, {"gpus": 2, "nodes": 2}):
        for images, expected in (({}, chart_image), ({"jobs": own_image}, own_image)):
            spec = ftr_api.RESOURCE.parse_spec({**raw, "images": images, "resources": {**raw.get("resources", {}),
                                                                             **resources}})
            for step in plan.build_plan("quickstart", "team-a", spec, "s3://kubetune", uid="uid-1"):
                for use_jobset in (False, True):
                    made = group.manifests_for_step(step, spec, owner, settings.store_endpoint,
                                                    jobs_image=settings.jobs_image, use_jobset=use_jobset)
                    found = _images(made)
                    assert found and set(found) == {expected}, (step.name, images, resources)
