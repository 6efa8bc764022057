"""The platform's dashboard and alerts against real parts: a real Prometheus (tests/conftest.py `prometheus`)
scrapes the operator (kopf, in this process, against kopf's API emulator), a real vLLM CPU server, and a
real Pushgateway fed by real train, evaluate and bench jobs.

The scenario, made once for the module: FineTuneRun `ft` walks its plan up to its second stage (the test
plays the Job controller and writes what the jobs would have written); `broken`'s first Job fails;
`flaky`'s credentials Secret answers 500 (reconcile errors); ModelServe `assistant` (served as `smollm2`,
the name the vLLM server serves) rolls out a revision, then rejects a worse candidate at its promotion
gate; ModelServe `cold` never gets a ready replica. Real jobs push under the same names: a tiny train of
`ft`'s chat stage, evaluations of its base and its tools model (from predictions), a benchmark of
`assistant`'s revision against the vLLM server.

Then every dashboard panel's query, with the variables set as a user would pick them for this scenario,
and every alert expression go to Prometheus' HTTP API: each returns data for our series, and the alerts
the scenario provokes fire (or are pending, for those with a `for`). Deleting a run and a serve deletes
their groups from the Pushgateway, and only theirs.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml

from conftest import ALERT_RULES, S3_ENV, Prometheus
from kubetune_jobs import cli
from kubetune_jobs.contract import layout
from kubetune_jobs.contract import metrics as m
from kubetune_jobs.evaluate import checker, suites
from kubetune_jobs.storage import location
from kubetune_operator import naming
from kubetune_operator.finetunerun import api as ftr_api
from kubetune_operator.modelserve import api as ms_api
from kubetune_operator.modelserve import resources
from support.kmock_cluster import EmulatedCluster, OperatorThread, wait_for
from support.served_model import SERVED_NAME

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((ROOT / "charts" / "kubetune" / "dashboards" / "kubetune.json").read_text())
RULES = [r for g in yaml.safe_load(ALERT_RULES.read_text())["groups"] for r in g["rules"]]
DATA = ROOT / "tests" / "fixtures" / "toolcalls"
NS, OTHER_NS = "default", "other"
# The variables as a user picks them for this scenario (Grafana writes a multi-value pick as a regex group).
VARIABLES = {"namespace": NS, "run": "(ft|broken)", "model_name": f"({SERVED_NAME}|cold)",
             "__rate_interval": "1m", "__range": "1h"}
SECRET = "store-creds"
WAIT = 90.0  # seconds: Prometheus scrapes every 0.5 s and evaluates rules as often


def substitute(expr: str) -> str:
    return re.sub(r"\$(\w+)", lambda mt: VARIABLES[mt.group(1)], expr)


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:kubetune_|vllm:)[a-z0-9_:]+)", expr))


def finite(series: list[dict[str, Any]]) -> list[float]:
    return [float(s["value"][1]) for s in series if math.isfinite(float(s["value"][1]))]


# ---------------------------------------------------------------- playing the cluster

def status(cluster: EmulatedCluster, api_version: str, plural: str, name: str) -> dict:
    return (cluster.get(api_version, plural, NS, name) or {}).get("status") or {}


def run_status(cluster: EmulatedCluster, name: str) -> dict:
    return status(cluster, ftr_api.API_VERSION, ftr_api.PLURAL, name)


def serve_status(cluster: EmulatedCluster, name: str) -> dict:
    return status(cluster, ms_api.API_VERSION, ms_api.PLURAL, name)


def run_manifest(name: str, storage: dict, stages: tuple[str, ...] = ("chat", "tools")) -> dict:
    datasets = {"chat": {"source": "HuggingFaceH4/ultrachat_200k", "format": "ultrachat"},
                "tools": {"source": "Salesforce/xlam-function-calling-60k", "format": "xlam",
                          "noCallSource": "HuggingFaceH4/ultrachat_200k"}}
    return {"apiVersion": ftr_api.API_VERSION, "kind": ftr_api.KIND, "metadata": {"name": name, "namespace": NS},
            "spec": {"stages": [{"name": s, "dataset": datasets[s]} for s in stages], "storage": storage,
                     "evaluation": {"suites": [{"name": "seed-tools"}]}}}


def open_job(cluster: EmulatedCluster, run: str) -> dict:
    """The run's one unfinished Job."""
    def find() -> list[dict]:
        return [j for j in cluster.jobs(NS, run) if not (j.get("status") or {}).get("conditions")]
    found = wait_for(find, what=f"an open Job of {run}")
    assert len(found) == 1, [j["metadata"]["name"] for j in found]
    return found[0]


def walk_ft(cluster: EmulatedCluster, bucket: str) -> None:
    """Finish `ft`'s steps up to and including its first training stage, then leave it running."""
    run = layout.RunLayout.of(f"s3://{bucket}", NS, "ft")
    while True:
        job = open_job(cluster, "ft")
        step = job["metadata"]["labels"][naming.LABEL_STEP]
        if step == "train-tools":
            return
        if step.startswith("train-"):
            location(run.progress(step.removeprefix("train-"))).write_json(
                {"state": "succeeded", "step": 4, "total": 4, "loss": 1.2, "tokens_per_second": 900.0})
        if step.startswith("eval-"):
            label = step.removeprefix("eval-")
            location(run.report(label)).write_json({"complete": True, "suites": {"seed-tools": {
                "accuracy": 0.3 if label == "base" else 0.6, "false_call_rate": 0.1}}})
        cluster.finish_job(NS, job["metadata"]["name"])
        wait_for(lambda s=step: s in (run_status(cluster, "ft").get("stepsDone") or []), what=f"{step} done")


def model(bucket: str, name: str) -> str:
    uri = f"s3://{bucket}/models/{name}"
    location(uri).child("config.json").write_text(json.dumps({"model_type": "llama", "name": name}))
    location(layout.join(uri, layout.COMPLETE_MARKER)).write_text(json.dumps({"config.json": {"size": 1,
                                                                                             "sha256": name}}))
    return uri


def serve_manifest(name: str, storage: dict, uri: str, served: str, promotion: bool,
                   adapters: list[dict] | None = None) -> dict:
    spec: dict[str, Any] = {"model": {"uri": uri}, "storage": storage, "servedModelName": served,
                            "benchmark": {"enabled": False}, **({"adapters": adapters} if adapters else {})}
    if promotion:
        spec["promotion"] = {"enabled": True, "suites": [{"name": "seed-tools"}]}
    return {"apiVersion": ms_api.API_VERSION, "kind": ms_api.KIND, "metadata": {"name": name, "namespace": NS},
            "spec": spec}


def deployments(cluster: EmulatedCluster, serve: str) -> dict[str, dict]:
    return {d["metadata"]["labels"][resources.LABEL_REVISION]: d for d in cluster.list("apps/v1", "deployments", NS)
            if d["metadata"]["labels"].get(resources.LABEL_SERVE) == serve}


def make_ready(cluster: EmulatedCluster, serve: str, revision: str) -> None:
    dep = deployments(cluster, serve)[revision]
    n = dep["spec"]["replicas"]
    cluster.patch("apps/v1", "deployments", NS, dep["metadata"]["name"],
                  {"status": {"replicas": n, "readyReplicas": n, "availableReplicas": n, "updatedReplicas": n,
                              "observedGeneration": 1}}, subresource="status")


def reject_a_candidate(cluster: EmulatedCluster, bucket: str, storage: dict) -> str:
    """`assistant` serves a first revision, then its gate rejects a worse second one; the first revision."""
    first = wait_for(lambda: list(deployments(cluster, "assistant")), what="assistant's first revision")[0]
    make_ready(cluster, "assistant", first)
    wait_for(lambda: serve_status(cluster, "assistant").get("model", {}).get("revision") == first, what="serving")
    cluster.patch(ms_api.API_VERSION, ms_api.PLURAL, NS, "assistant",
                  {"spec": {"model": {"uri": model(bucket, "assistant-2")}}})
    second = wait_for(lambda: [r for r in deployments(cluster, "assistant") if r != first], what="a candidate")[0]
    make_ready(cluster, "assistant", second)
    def gate_jobs() -> list[dict] | None:
        found = [j for j in cluster.jobs(NS, "assistant") if "-gate-" in j["metadata"]["name"]]
        return found if len(found) == 2 else None
    gates = wait_for(gate_jobs, what="two gate Jobs")
    results = layout.ServeLayout.of(f"s3://{bucket}", NS, "assistant")
    for revision, accuracy in ((first, 0.4), (second, 0.2)):
        location(results.report(revision)).write_json({"complete": True, "suites": {"seed-tools": {
            "accuracy": accuracy, "false_call_rate": 0.0}}})
    for job in gates:
        cluster.finish_job(NS, job["metadata"]["name"])
    wait_for(lambda: (serve_status(cluster, "assistant").get("history") or [{}])[-1].get("reason")
             == "PromotionRejected", what="the rejection")
    return first


# ---------------------------------------------------------------- the real jobs

def predictions(tmp: Path, wrong: int) -> Path:
    items = suites.load("seed-tools")
    rows = [{"id": it.id, "tool_calls": checker.example_calls(it.ground_truth, it.functions)} for it in items]
    for k in range(wrong):
        rows[k] = {"id": items[k].id, "text": "no idea"}
    path = tmp / f"predictions-{wrong}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def evaluate(tmp: Path, gateway: str, label: str, wrong: int, namespace: str = NS) -> None:
    assert cli.main(["evaluate", "--suite", "seed-tools", "--predictions", str(predictions(tmp, wrong)),
                     "--output", str(tmp / f"eval-{namespace}-{label}"), "--pushgateway", gateway,
                     "--run-name", "ft", "--model-label", label, "--namespace", namespace]) == 0


def train(tmp: Path, gateway: str, model_dir: str) -> None:
    assert cli.main(["train", "--model", model_dir, "--data", str(DATA), "--output", str(tmp / "train-chat"),
                     "--max-steps", "6", "--batch-size", "2", "--grad-accum", "1", "--max-seq-length", "384",
                     "--save-steps", "6", "--lora-r", "4", "--no-merge", "--no-load-in-4bit", "--precision", "auto",
                     "--pushgateway", gateway, "--run-name", "ft", "--stage-name", "chat", "--namespace", NS]) == 0


def bench(tmp: Path, gateway: str, vllm_server, revision: str) -> None:
    assert cli.main(["bench", "--endpoint", vllm_server.base_url, "--model", vllm_server.model, "--concurrency", "1,4",
                     "--requests", "4", "--max-tokens", "16", "--warmup", "1", "--output", str(tmp / "bench"),
                     "--pushgateway", gateway, "--serve-name", "assistant", "--revision", revision,
                     "--namespace", NS]) == 0


PROBE_SET = ROOT / "tests" / "fixtures" / "probe" / "few-shot-weather.jsonl"


def probe(tmp: Path, gateway: str, vllm_server, revision: str) -> None:
    assert cli.main(["probe", "--endpoint", vllm_server.base_url, "--model", vllm_server.model, "--data", str(PROBE_SET),
                     "--rounds", "1", "--max-new-tokens", "48", "--output", str(tmp / "probe"), "--pushgateway", gateway,
                     "--serve-name", "assistant", "--revision", revision, "--namespace", NS]) == 0


def groups(gateway: str) -> list[dict[str, str]]:
    """The grouping labels of every group the Pushgateway holds, in a stable order."""
    with urllib.request.urlopen(f"{gateway}/api/v1/metrics", timeout=10) as resp:
        found = [g["labels"] for g in json.loads(resp.read())["data"]]
    return sorted(found, key=lambda g: sorted(g.items()))


# ---------------------------------------------------------------- the scenario

@pytest.fixture(scope="module")
def scenario(prometheus: Prometheus, pushgateway: str, vllm_server, tiny_qwen2: str, s3_endpoint: str,
             tmp_path_factory: pytest.TempPathFactory):
    from minio import Minio

    assert SERVED_NAME == vllm_server.model
    tmp = tmp_path_factory.mktemp("observability")
    bucket = f"kt-{uuid.uuid4().hex[:12]}"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**S3_ENV, "KUBETUNE_S3_ENDPOINT": s3_endpoint}.items():
            mp.setenv(key, value)
        Minio(s3_endpoint.split("://", 1)[1], access_key=S3_ENV["AWS_ACCESS_KEY_ID"],
              secret_key=S3_ENV["AWS_SECRET_ACCESS_KEY"], secure=False).make_bucket(bucket)
        storage = {"endpoint": s3_endpoint, "bucket": bucket, "credentialsSecret": SECRET}
        with EmulatedCluster() as cluster, OperatorThread(cluster.url, pushgateway=pushgateway):
            keys = {k: base64.b64encode(os.environ[k].encode()).decode() for k in ("AWS_ACCESS_KEY_ID",
                                                                                   "AWS_SECRET_ACCESS_KEY")}
            for name in (SECRET, "flaky-creds"):
                cluster.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
                                "data": keys}, plural="secrets")
            # A reconcile error: reading flaky's credentials fails with a server error, every time.
            emu = cluster.emulator
            assert emu is not None
            emu[kmock.action.FETCH, kmock.resource("", "v1", "secrets"), kmock.name("flaky-creds")] << 500
            cluster.create(run_manifest("ft", storage))
            cluster.create(run_manifest("broken", storage, ("chat",)))
            cluster.create(run_manifest("flaky", {**storage, "credentialsSecret": "flaky-creds"}, ("chat",)))
            cluster.create(serve_manifest("assistant", storage, model(bucket, "assistant-1"), SERVED_NAME, True))
            cluster.create(serve_manifest("cold", storage, model(bucket, "cold-1"), "cold", False,
                                          [{"name": "cold-tools", "uri": model(bucket, "cold-tools")}]))
            # Counters and histograms start at 0 when a namespace or serve is first seen; Prometheus must see
            # those zeros before anything increases, as it would in a cluster.
            for expr in (f'{m.STEP_DURATION.name}_count{{namespace="{NS}", kind="evaluate"}}',
                         f'{m.SERVE_DECISIONS.name}{{modelserve="assistant", decision="Rejected"}}'):
                wait_for(lambda e=expr: prometheus.query(e), timeout=WAIT, interval=0.5, what=f"Prometheus has {expr}")
            # The real jobs, pushing under the scenario's names.
            evaluate(tmp, pushgateway, "base", wrong=8)
            evaluate(tmp, pushgateway, "tools", wrong=2)
            train(tmp, pushgateway, tiny_qwen2)
            cluster.finish_job(NS, open_job(cluster, "broken")["metadata"]["name"], succeeded=False)
            walk_ft(cluster, bucket)
            first = reject_a_candidate(cluster, bucket, storage)
            bench(tmp, pushgateway, vllm_server, first)
            probe(tmp, pushgateway, vllm_server, first)
            # Everything pushed and recorded has been scraped, and the rules have seen it.
            for expr in (f'{m.BENCH_COMPLETE.name}{{serve="assistant", namespace="{NS}"}}',
                         f'{m.PROBE_ROUNDS.name}{{serve="assistant", namespace="{NS}"}}',
                         f'{m.TRAIN_STEP.name}{{run="ft", stage="chat"}} == 6',
                         'ALERTS{alertname="KubetuneEvaluationGateRejected", alertstate="firing"}',
                         'ALERTS{alertname="KubetuneRunFailed", alertstate="firing"}'):
                wait_for(lambda e=expr: prometheus.query(e), timeout=WAIT, interval=0.5, what=f"Prometheus has {expr}")
            yield {"cluster": cluster, "gateway": pushgateway, "tmp": tmp, "revision": first}


def test_every_dashboard_query_returns_data_for_our_series(prometheus: Prometheus, scenario) -> None:
    empty = []
    for panel in DASHBOARD["panels"]:
        for target in panel.get("targets", []):
            result = prometheus.query(substitute(target["expr"]))
            if not finite(result):
                empty.append(f"{panel['title']}: {target['expr']} -> {result}")
    assert empty == []


def test_the_figures_are_the_scenarios(prometheus: Prometheus, scenario) -> None:
    """A few panels' values, known from what the scenario did."""
    def one(expr: str) -> float:
        [value] = finite(prometheus.query(expr))
        return value

    assert one(f'{m.TRAIN_STEP.name}{{namespace="{NS}", run="ft", stage="chat"}} / '
               f'{m.TRAIN_PLANNED_STEPS.name}{{namespace="{NS}", run="ft", stage="chat"}}') == 1.0
    assert one(f'{m.TRAIN_TOKENS.name}{{namespace="{NS}", run="ft", stage="chat"}}') > 0
    reported = {label: json.loads((scenario["tmp"] / f"eval-{NS}-{label}" / "report.json").read_text())
                ["suites"]["seed-tools"]["accuracy"] for label in ("base", "tools")}
    assert reported["tools"] > reported["base"]
    delta = one(f'{m.EVAL_ACCURACY.name}{{run="ft", category="all", model="tools"}} - on (namespace, run, suite) '
                f'group_left {m.EVAL_ACCURACY.name}{{run="ft", category="all", model="base"}}')
    assert delta == pytest.approx(reported["tools"] - reported["base"])
    assert one(f'sum(increase({m.SERVE_DECISIONS.name}{{modelserve="assistant", decision="Rejected"}}[1h]))') > 0
    assert one(f'sum(rate({m.RECONCILE_ERRORS.name}{{namespace="{NS}", resource="FineTuneRun", reason="Http500"}}[1m]))') > 0
    assert one(f'sum(rate({m.VLLM_GENERATION_TOKENS}{{namespace="{NS}", model_name="{SERVED_NAME}"}}[1m]))') > 0
    assert one(f'{m.BENCH_COMPLETE.name}{{serve="assistant", model_name="{SERVED_NAME}"}}') == 1
    assert one(f'{m.SERVE_READY.name}{{modelserve="cold"}}') == 0
    assert one(f'{m.SERVE_READY_REPLICAS.name}{{modelserve="assistant"}}') == 1
    assert one(f'{m.SERVE_ADAPTER_READY.name}{{modelserve="cold", adapter="cold-tools"}}') == 0  # no replica yet


def test_the_variables_offer_the_scenarios_values(prometheus: Prometheus, scenario) -> None:
    expected = {"namespace": {NS}, "run": {"ft", "broken"}, "model_name": {SERVED_NAME, "cold"}}
    for variable in DASHBOARD["templating"]["list"]:
        if variable["type"] != "query":
            continue
        selector, label = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["definition"]).groups()
        values = prometheus.label_values(label, substitute(selector))
        assert expected[variable["name"]] <= set(values), (variable["name"], values)


def test_every_alert_evaluates_and_the_provoked_ones_fire(prometheus: Prometheus, scenario) -> None:
    for rule in RULES:
        prometheus.query(rule["expr"])  # evaluates (a PromQL error raises)
        for name in metric_names(rule["expr"]):
            assert prometheus.query(f'count({{__name__="{name}"}})'), (rule["alert"], name)
    active = {(a["labels"]["alertname"], a["labels"].get("run") or a["labels"].get("modelserve"), a["state"])
              for a in prometheus.alerts()}
    assert ("KubetuneRunFailed", "broken", "firing") in active
    assert ("KubetuneEvaluationGateRejected", "assistant", "firing") in active
    assert ("KubetuneModelServeNotReady", "cold", "pending") in active  # `for: 15m`: pending first
    # The scenario's succeeded run does not fire. (Runs other tests left failed in this process's operator
    # metrics may: the registry is per process, as it is per operator pod.)
    assert not {who for a, who, _ in active if a == "KubetuneRunFailed"} & {"ft"}


def test_what_we_expose_passes_promtool(prometheus: Prometheus, scenario) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus"
    pushed = urllib.request.urlopen(f"{scenario['gateway']}/metrics", timeout=10).read().decode()
    ours = {f.name for f in text_string_to_metric_families(pushed) if f.name.startswith("kubetune_")}
    assert {m.TRAIN_STEP.name, m.EVAL_ACCURACY.name, m.BENCH_COMPLETE.name} <= ours
    kept = "\n".join(line for line in pushed.splitlines()
                     if re.match(r"(# (HELP|TYPE) )?kubetune_", line)) + "\n"
    operator = urllib.request.urlopen(f"http://127.0.0.1:{prometheus.operator_port}/metrics", timeout=10).read()
    for text in (kept.encode(), operator):
        out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True)
        assert out.returncode == 0 and not out.stdout.strip(), (out.stdout + out.stderr).decode()


def test_deleting_a_run_or_a_serve_deletes_its_pushed_groups_and_only_those(scenario) -> None:
    cluster, gateway = scenario["cluster"], scenario["gateway"]
    evaluate(scenario["tmp"], gateway, "base", wrong=0, namespace=OTHER_NS)  # the same run name elsewhere
    before = groups(gateway)
    mine = [g for g in before if m.run_owns(g, NS, "ft")]
    theirs = [g for g in before if m.run_owns(g, OTHER_NS, "ft")]
    assert {g["job"] for g in mine} == {m.TRAIN_GROUP.job, m.EVAL_GROUP.job} and len(theirs) == 1
    benches = [g for g in before if m.serve_owns(g, NS, "assistant")]
    assert sorted((g["job"], g["revision"]) for g in benches) == [(m.BENCH_GROUP.job, scenario["revision"]),
                                                                   (m.PROBE_GROUP.job, scenario["revision"])]
    cluster.delete(ftr_api.API_VERSION, ftr_api.PLURAL, NS, "ft")
    wait_for(lambda: not [g for g in groups(gateway) if m.run_owns(g, NS, "ft")], what="ft's groups deleted")
    cluster.delete(ms_api.API_VERSION, ms_api.PLURAL, NS, "assistant")
    wait_for(lambda: not [g for g in groups(gateway) if m.serve_owns(g, NS, "assistant")],
             what="assistant's groups deleted")
    after = groups(gateway)
    assert [g for g in after if m.run_owns(g, OTHER_NS, "ft")] == theirs
    assert [g for g in before if g not in mine and g not in benches] == after
