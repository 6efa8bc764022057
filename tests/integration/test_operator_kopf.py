"""The operator really running (kopf) against kopf's Kubernetes emulator (kmock), with S3 over HTTP (moto).

The tests play the kubelet/Job controller: they mark Jobs succeeded or failed and write what the jobs would
have written (progress.json, report.json) to the store.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from kubetune_jobs.contract import layout, metrics
from kubetune_jobs.storage import location
from kubetune_operator import naming
from kubetune_operator.finetunerun import api
from kubetune_operator.finetunerun.plan import build_plan
from support.kmock_cluster import EmulatedCluster, OperatorThread, wait_for

NS = "default"
SECRET = "store-creds"


@pytest.fixture
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster() as c:
        yield c


@pytest.fixture
def store(s3_server: str, s3_endpoint: str, cluster: EmulatedCluster) -> dict:
    """The run's storage block, with its credentials Secret created in the cluster."""
    data = {k: base64.b64encode(os.environ[k].encode()).decode() for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    cluster.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET, "namespace": NS},
                    "data": data}, plural="secrets")
    return {"endpoint": s3_endpoint, "bucket": s3_server.removeprefix("s3://"), "credentialsSecret": SECRET}


def run_manifest(name: str, storage: dict | None = None, **spec: object) -> dict:
    body = {"stages": [{"name": "chat", "dataset": {"source": "HuggingFaceH4/ultrachat_200k", "format": "ultrachat"}},
                       {"name": "tools", "dataset": {"source": "Salesforce/xlam-function-calling-60k",
                                                     "format": "xlam", "noCallSource": "HuggingFaceH4/ultrachat_200k"}}],
            "evaluation": {"suites": [{"name": "heldout"}, {"name": "bfcl-irrelevance"}]}}
    if storage:
        body["storage"] = storage
    body.update(spec)
    return {"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": name, "namespace": NS},
            "spec": body}


def plan_names(manifest: dict, root: str = "s3://kubetune") -> list[str]:
    return [s.name for s in build_plan(manifest["metadata"]["name"], NS, manifest["spec"], root)]


def status(cluster: EmulatedCluster, name: str) -> dict:
    return (cluster.run(NS, name) or {}).get("status") or {}


def condition(cluster: EmulatedCluster, name: str, type_: str) -> dict:
    return next((c for c in status(cluster, name).get("conditions") or [] if c["type"] == type_), {})


def job_names(cluster: EmulatedCluster, run: str) -> list[str]:
    return [j["metadata"]["name"] for j in cluster.jobs(NS, run)]


def next_job(cluster: EmulatedCluster, run: str, seen: set[str]) -> str:
    """Wait for the one new Job of `run` and return its step name."""
    new = wait_for(lambda: [j for j in cluster.jobs(NS, run) if j["metadata"]["name"] not in seen],
                   what=f"a new Job of {run} (seen {sorted(seen)})")
    assert len(new) == 1, f"more than one step started at once: {[j['metadata']['name'] for j in new]}"
    seen.add(new[0]["metadata"]["name"])
    return new[0]["metadata"]["labels"][naming.LABEL_STEP]


def test_run_walks_the_plan_in_order_to_succeeded(cluster: EmulatedCluster, store: dict) -> None:
    manifest = run_manifest("walk", store)
    expected = plan_names(manifest)
    run = layout.RunLayout.of(f"s3://{store['bucket']}", NS, "walk")
    accuracy = {"base": 0.2, "chat": 0.3, "tools": 0.8}
    with OperatorThread(cluster.url):
        cluster.create(manifest)
        seen: set[str] = set()
        started = []
        for _ in expected:
            step = next_job(cluster, "walk", seen)
            started.append(step)
            assert status(cluster, "walk").get("currentStep") == step or wait_for(
                lambda s=step: status(cluster, "walk").get("currentStep") == s, what=f"currentStep {step}")
            assert status(cluster, "walk")["phase"] == "Running"
            assert condition(cluster, "walk", "Succeeded")["status"] == "Unknown"
            if step.startswith("train-"):
                stage = step.removeprefix("train-")
                location(run.progress(stage)).write_json({"state": "running", "step": 5, "total": 10, "loss": 1.5,
                                                          "tokens_per_second": 1234.5})
                wait_for(lambda: status(cluster, "walk").get("progress") == "5/10", what="progress 5/10")
                assert status(cluster, "walk")["loss"] == 1.5
                location(run.progress(stage)).write_json({"state": "done", "step": 10, "total": 10, "loss": 0.9,
                                                          "tokens_per_second": 1500.0})
            if step.startswith("eval-"):
                label = step.removeprefix("eval-")
                location(run.report(label)).write_json({"complete": True, "suites": {
                    "heldout": {"accuracy": accuracy[label], "false_call_rate": 0.05},
                    "bfcl-irrelevance": {"accuracy": accuracy[label]}}})
            cluster.finish_job(NS, naming.job_name("walk", step))
        wait_for(lambda: status(cluster, "walk").get("phase") == "Succeeded", what="phase Succeeded")
    assert started == expected
    assert sorted(job_names(cluster, "walk")) == sorted(naming.job_name("walk", s) for s in expected)
    st = status(cluster, "walk")
    assert st["stepsDone"] == expected
    assert condition(cluster, "walk", "Succeeded")["reason"] == "AllStepsSucceeded"
    assert condition(cluster, "walk", "Progressing")["status"] == "False"
    assert condition(cluster, "walk", "Succeeded")["observedGeneration"] == st["observedGeneration"] == 1
    stages = {s["name"]: s for s in st["stages"]}
    assert stages["tools"] == {"name": "tools", "phase": "Succeeded", "step": 10, "total": 10, "loss": 0.9,
                               "tokensPerSecond": 1500.0}
    evals = {e["label"]: e for e in st["evaluations"]}
    assert [evals[x]["accuracy"] for x in ("base", "chat", "tools")] == [0.2, 0.3, 0.8]
    assert st["accuracy"] == 0.8
    assert st["artifacts"]["finalModel"] == run.merged("tools")
    assert not st.get("currentStep") and not st.get("progress")
    # Events for the transitions, and the operator's metrics (same process: the default registry).
    reasons = [e.get("reason") for e in cluster.list("v1", "events", NS)
               if e.get("involvedObject", {}).get("name") == "walk"]
    assert reasons.count("JobCreated") == len(expected) and "RunSucceeded" in reasons
    assert REGISTRY.get_sample_value(metrics.RUN_EVAL_ACCURACY.name,
                                     {"namespace": NS, "run": "walk", "suite": "heldout"}) == 0.8
    assert REGISTRY.get_sample_value(metrics.RUN_PHASE.name, {"namespace": NS, "run": "walk", "phase": "Succeeded"}) == 1
    assert REGISTRY.get_sample_value("kubetune_operator_step_duration_seconds_count",
                                     {"namespace": NS, "kind": "train"}) >= 2


def test_figures_that_are_not_numbers_never_block_the_status_and_fail_the_gate(cluster: EmulatedCluster,
                                                                              store: dict) -> None:
    """A diverged training writes `"loss": NaN` to progress.json and an evaluation can write a NaN accuracy. JSON
    has no NaN: an API server refuses a status write holding one, whole, so the run's status would stop moving
    (and a NaN accuracy compared with a gate passes it). The status leaves such a figure out; the gate fails."""
    manifest = run_manifest("nan", store, stages=[{"name": "chat", "dataset": {
        "source": "HuggingFaceH4/ultrachat_200k", "format": "ultrachat"}}], evaluation={
        "suites": [{"name": "heldout"}], "evaluateBase": False, "gates": {"minAccuracy": {"heldout": 0.5}}})
    run = layout.RunLayout.of(f"s3://{store['bucket']}", NS, "nan")
    with OperatorThread(cluster.url):
        cluster.create(manifest)
        seen: set[str] = set()
        assert next_job(cluster, "nan", seen) == "prepare-chat"
        cluster.finish_job(NS, naming.job_name("nan", "prepare-chat"))
        assert next_job(cluster, "nan", seen) == "train-chat"
        location(run.progress("chat")).write_bytes(b'{"state": "running", "step": 3, "total": 9, "loss": NaN, '
                                                   b'"tokens_per_second": Infinity}')
        wait_for(lambda: status(cluster, "nan").get("progress") == "3/9", what="progress 3/9")
        assert status(cluster, "nan")["stages"][0] == {"name": "chat", "phase": "Training", "step": 3, "total": 9}
        cluster.finish_job(NS, naming.job_name("nan", "train-chat"))
        assert next_job(cluster, "nan", seen) == "eval-chat"
        location(run.report("chat")).write_bytes(b'{"complete": true, "suites": {"heldout": {"accuracy": NaN}}}')
        cluster.finish_job(NS, naming.job_name("nan", "eval-chat"))
        wait_for(lambda: status(cluster, "nan").get("phase") == "Failed", what="phase Failed")
    cond = condition(cluster, "nan", "Succeeded")
    assert cond["reason"] == "GateNotMet" and "spec.evaluation.gates.minAccuracy.heldout" in cond["message"]
    assert status(cluster, "nan")["evaluations"][0]["suites"] == [{"suite": "heldout"}]


def test_kueue_run_waits_for_admission(cluster: EmulatedCluster) -> None:
    with OperatorThread(cluster.url):
        cluster.create(run_manifest("queued", resources={"kueueQueue": "team-a"}))
        seen: set[str] = set()
        step = next_job(cluster, "queued", seen)
        job = cluster.get("batch/v1", "jobs", NS, naming.job_name("queued", step))
        assert job["spec"]["suspend"] is True and job["metadata"]["labels"][naming.KUEUE_QUEUE_LABEL] == "team-a"
        wait_for(lambda: condition(cluster, "queued", "Progressing").get("reason") == "Suspended",
                 what="Progressing=Suspended")
        # Kueue admits the Job: the operator reports it running.
        cluster.patch("batch/v1", "jobs", NS, naming.job_name("queued", step), {"spec": {"suspend": False}})
        wait_for(lambda: condition(cluster, "queued", "Progressing").get("reason") == "StepRunning",
                 what="Progressing=StepRunning")


def test_jobs_run_the_operators_jobs_image_unless_the_run_names_its_own(cluster: EmulatedCluster) -> None:
    operators = "registry.example:5000/team/kubetune-jobs:2.3.4"
    own = "registry.example/own/jobs:1.0"
    with OperatorThread(cluster.url, jobs_image=operators):
        cluster.create(run_manifest("default-image"))
        cluster.create(run_manifest("own-image", images={"jobs": own}))
        for run, image in (("default-image", operators), ("own-image", own)):
            step = next_job(cluster, run, set())
            job = cluster.get("batch/v1", "jobs", NS, naming.job_name(run, step))
            assert job["spec"]["template"]["spec"]["containers"][0]["image"] == image, run


def test_failed_job_fails_the_run_with_its_reason(cluster: EmulatedCluster) -> None:
    with OperatorThread(cluster.url):
        cluster.create(run_manifest("failing"))
        seen: set[str] = set()
        assert next_job(cluster, "failing", seen) == "prepare-chat"
        cluster.finish_job(NS, naming.job_name("failing", "prepare-chat"))
        assert next_job(cluster, "failing", seen) == "prepare-tools"
        cluster.finish_job(NS, naming.job_name("failing", "prepare-tools"), succeeded=False,
                           reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit")
        wait_for(lambda: status(cluster, "failing").get("phase") == "Failed", what="phase Failed")
        cond = condition(cluster, "failing", "Succeeded")
        assert cond["status"] == "False" and cond["reason"] == "PrepareFailed"
        assert "prepare-tools" in cond["message"] and "BackoffLimitExceeded" in cond["message"]
        assert condition(cluster, "failing", "Progressing")["status"] == "False"
    assert len(job_names(cluster, "failing")) == 2, "no step may start after a failure"


def test_operator_restart_mid_run_adopts_jobs_and_never_duplicates(cluster: EmulatedCluster) -> None:
    manifest = run_manifest("restart")
    expected = plan_names(manifest)
    seen: set[str] = set()
    with OperatorThread(cluster.url):
        cluster.create(manifest)
        for _ in range(3):
            step = next_job(cluster, "restart", seen)
            cluster.finish_job(NS, naming.job_name("restart", step))
        step = next_job(cluster, "restart", seen)  # the 4th step's Job is running when the operator stops
    running = step
    with OperatorThread(cluster.url):  # a restart that finds the run mid-step
        wait_for(lambda: condition(cluster, "restart", "Progressing").get("message", "").startswith(f"step {running}"),
                 what="the resumed operator to report the running step")
        assert len(job_names(cluster, "restart")) == 4
    cluster.finish_job(NS, naming.job_name("restart", running))  # finishes while no operator runs
    with OperatorThread(cluster.url):
        for _ in expected[4:]:
            step = next_job(cluster, "restart", seen)
            cluster.finish_job(NS, naming.job_name("restart", step))
        wait_for(lambda: status(cluster, "restart").get("phase") == "Succeeded", what="phase Succeeded")
    names = job_names(cluster, "restart")
    assert len(names) == len(set(names)) == len(expected)
    assert status(cluster, "restart")["stepsDone"] == expected


def test_steps_whose_outputs_verify_are_skipped(cluster: EmulatedCluster, store: dict) -> None:
    run = layout.RunLayout.of(f"s3://{store['bucket']}", NS, "skip")
    manifest = run_manifest("skip", store)
    # The run exists before the operator starts, so the test knows the uid the API server gave it and can write
    # outputs that carry this very run's step fingerprint.
    uid = cluster.create(manifest)["metadata"]["uid"]
    steps = {s.name: s for s in build_plan("skip", NS, manifest["spec"], f"s3://{store['bucket']}", uid=uid)}
    location(run.data("chat")).child("train.jsonl").write_text("{}\n")
    location(run.stats("chat")).write_json({"content_hash": "abc", "files": {"train.jsonl": "x"},
                                            "step_fingerprint": steps["prepare-chat"].fingerprint})
    with OperatorThread(cluster.url):
        seen: set[str] = set()
        assert next_job(cluster, "skip", seen) == "prepare-tools"
        wait_for(lambda: "prepare-chat" in status(cluster, "skip").get("stepsDone", []), what="prepare-chat done")
    assert naming.job_name("skip", "prepare-chat") not in job_names(cluster, "skip")


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_operator_api import INVALID, minimal  # noqa: E402


def test_invalid_specs_fail_with_a_message_naming_the_field() -> None:
    """A cluster with an outdated CRD accepts any spec: the operator must reject it."""
    import copy

    with EmulatedCluster(outdated_crds=True) as cluster:
        cases = {}
        for i, (mutate, field, word) in enumerate(INVALID):
            spec = copy.deepcopy(minimal())
            mutate(spec)
            name = f"invalid-{i}"
            cases[name] = (field, word)
            cluster.create({"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": name, "namespace": NS},
                            "spec": spec})
        missing = run_manifest("no-secret", {"endpoint": "http://minio:9000", "credentialsSecret": "absent"})
        cluster.create(missing)
        cases["no-secret"] = ("spec.storage.credentialsSecret", "not found")
        with OperatorThread(cluster.url):
            for name, (field, word) in cases.items():
                cond = wait_for(lambda n=name: condition(cluster, n, "Succeeded").get("status") == "False"
                                and condition(cluster, n, "Succeeded"), what=f"{name} rejected")
                assert cond["reason"] in ("InvalidSpec", "SecretNotFound")
                assert f"{field}:" in cond["message"] and word.lower() in cond["message"].lower(), (name, cond)
                assert status(cluster, name)["phase"] == "Failed"
        assert cluster.jobs(NS) == [], "an invalid run must not start any Job"


def test_delete_with_cleanup_removes_artifacts_retain_keeps_them(cluster: EmulatedCluster, store: dict) -> None:
    bucket = f"s3://{store['bucket']}"
    gone, kept = layout.RunLayout.of(bucket, NS, "gone"), layout.RunLayout.of(bucket, NS, "kept")
    for run in (gone, kept):
        location(run.stats("chat")).write_json({"content_hash": "x"})
        location(run.merged("chat")).child("model.safetensors").write_bytes(b"weights")
    with OperatorThread(cluster.url):
        cluster.create(run_manifest("gone", store, cleanupPolicy="Delete"))
        cluster.create(run_manifest("kept", store))
        wait_for(lambda: cluster.jobs(NS, "gone") and cluster.jobs(NS, "kept"), what="both runs started")
        assert naming.FINALIZER in cluster.run(NS, "gone")["metadata"].get("finalizers", [])
        cluster.delete(api.API_VERSION, api.PLURAL, NS, "gone")
        cluster.delete(api.API_VERSION, api.PLURAL, NS, "kept")
        wait_for(lambda: cluster.run(NS, "gone") is None and cluster.run(NS, "kept") is None, what="runs deleted")
    assert not location(gone.root).exists() and location(gone.root).list() == []
    assert location(kept.merged("chat")).child("model.safetensors").read_bytes() == b"weights"


def test_cleanup_never_blocks_deletion_on_an_unreachable_store(cluster: EmulatedCluster, store: dict,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens here once closed
    monkeypatch.setenv("KUBETUNE_S3_RETRIES", "1")
    with OperatorThread(cluster.url):
        cluster.create(run_manifest("stuck", {**store, "endpoint": dead}, cleanupPolicy="Delete"))
        wait_for(lambda: naming.FINALIZER in (cluster.run(NS, "stuck") or {}).get("metadata", {}).get("finalizers", []),
                 what="finalizer added")
        cluster.delete(api.API_VERSION, api.PLURAL, NS, "stuck")
        wait_for(lambda: cluster.run(NS, "stuck") is None, timeout=30, what="deletion despite the dead store")


# ---------------------------------------------------------------- training on several nodes

def _reach_train(cluster: EmulatedCluster, run: str, seen: set[str]) -> str:
    """Finish the steps before the first training step; return that step's name."""
    while True:
        step = next_job(cluster, run, seen)
        if step.startswith("train-"):
            return step
        cluster.finish_job(NS, naming.job_name(run, step))


def _group_services(cluster: EmulatedCluster, run: str) -> list[str]:
    return [s["metadata"]["name"] for s in cluster.list("v1", "services", NS)
            if any(r.get("name") == run for r in s["metadata"].get("ownerReferences") or [])]


def test_multinode_group_is_created_once_adopted_after_restart_and_restarted_as_the_policy_says(
        cluster: EmulatedCluster) -> None:
    manifest = run_manifest("group", resources={"gpus": 2, "nodes": 2, "backoffLimit": 1})
    seen: set[str] = set()
    with OperatorThread(cluster.url):
        cluster.create(manifest)
        step = _reach_train(cluster, "group", seen)
        first = naming.group_job_name("group", step)
        job = cluster.get("batch/v1", "jobs", NS, first)
        assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2
        assert _group_services(cluster, "group") == [naming.group_service_name("group", step)]
    with OperatorThread(cluster.url):  # a restarted operator adopts the group: nothing new is made
        wait_for(lambda: condition(cluster, "group", "Progressing").get("message", "").startswith(f"step {step}"),
                 what="the restarted operator to report the training step")
        # One pod failed: the Job failed (backoffLimit 0) and the group starts again as a new Job.
        cluster.finish_job(NS, first, succeeded=False)
        second = naming.group_job_name("group", step, 1)
        wait_for(lambda: cluster.get("batch/v1", "jobs", NS, second), what="the group's second start")
        assert status(cluster, "group")["phase"] == "Running"
        def reasons() -> list[str]:
            return [e.get("reason") for e in cluster.list("v1", "events", NS)
                    if e.get("involvedObject", {}).get("name") == "group"]

        # The event is posted after the Job is created: wait for it, then count.
        wait_for(lambda: "GroupRestarted" in reasons(), what="the GroupRestarted event")
        assert reasons().count("GroupRestarted") == 1
        # backoffLimit 1: the second failure fails the run.
        cluster.finish_job(NS, second, succeeded=False)
        wait_for(lambda: status(cluster, "group").get("phase") == "Failed", what="phase Failed")
        assert condition(cluster, "group", "Succeeded")["reason"] == "TrainFailed"
    train_jobs = [n for n in job_names(cluster, "group") if n.startswith(naming.group_job_name("group", step))]
    assert sorted(train_jobs) == [first, second]
    assert _group_services(cluster, "group") == [naming.group_service_name("group", step)]


def test_multinode_usage_error_fails_at_once(cluster: EmulatedCluster) -> None:
    with OperatorThread(cluster.url):
        cluster.create(run_manifest("usage", resources={"gpus": 1, "nodes": 2, "backoffLimit": 3}))
        step = _reach_train(cluster, "usage", set())
        cluster.finish_job(NS, naming.group_job_name("usage", step), succeeded=False, reason="PodFailurePolicy",
                           message="Container kubetune-job for pod default/x failed with exit code 2 matching "
                                   "FailJob rule at index 1")
        wait_for(lambda: status(cluster, "usage").get("phase") == "Failed", what="phase Failed")
    assert not cluster.get("batch/v1", "jobs", NS, naming.group_job_name("usage", step, 1))


def test_multinode_step_as_a_jobset_when_the_setting_says_so(cluster: EmulatedCluster) -> None:
    from support.kmock_cluster import jobset_status

    seen: set[str] = set()
    with OperatorThread(cluster.url, jobset=True):
        cluster.create(run_manifest("js", resources={"gpus": 4, "nodes": 2, "kueueQueue": "team-a"}))
        while True:  # the steps before training are plain Jobs
            step = next_job(cluster, "js", seen)
            cluster.finish_job(NS, naming.job_name("js", step))
            if step == "eval-base":
                break
        name = naming.jobset_name("js", "train-chat")
        js = wait_for(lambda: cluster.get("jobset.x-k8s.io/v1alpha2", "jobsets", NS, name), what="the JobSet")
        assert js["spec"]["suspend"] is True and js["metadata"]["labels"][naming.KUEUE_QUEUE_LABEL] == "team-a"
        wait_for(lambda: condition(cluster, "js", "Progressing").get("reason") == "Suspended", what="Suspended")
        assert not [n for n in job_names(cluster, "js") if "train" in n] and not _group_services(cluster, "js")
        cluster.patch("jobset.x-k8s.io/v1alpha2", "jobsets", NS, name, {"spec": {"suspend": False}})
        wait_for(lambda: condition(cluster, "js", "Progressing").get("reason") == "StepRunning", what="admitted")
        cluster.patch("jobset.x-k8s.io/v1alpha2", "jobsets", NS, name, {"status": jobset_status()}, "status")
        assert next_job(cluster, "js", seen) == "eval-chat"  # the group finished: the run goes on
    assert len(cluster.list("jobset.x-k8s.io/v1alpha2", "jobsets", NS)) == 1
