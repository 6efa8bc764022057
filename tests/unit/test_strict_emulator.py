"""The test cluster (`support.kmock_cluster`) refuses, prunes and separates as an API server does: each way a
write is refused stores nothing and answers a Kubernetes Status naming the field."""

from __future__ import annotations

import copy
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest

from kubetune_operator.apitypes import API_VERSION
from kubetune_operator.finetunerun import api as ftr
from kubetune_operator.modelserve import api as ms
from support.kmock_cluster import EmulatedCluster

NS = "default"


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster() as c:
        yield c


def run(name: str, **spec: Any) -> dict[str, Any]:
    body = {"stages": [{"name": "chat", "dataset": {"source": "HuggingFaceH4/ultrachat_200k", "format": "ultrachat"}}]}
    body.update(spec)
    return {"apiVersion": API_VERSION, "kind": ftr.KIND, "metadata": {"name": name, "namespace": NS}, "spec": body}


def serve(name: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": ms.KIND, "metadata": {"name": name, "namespace": NS},
            "spec": {"model": {"uri": "s3://models/m1"}}}


def job(name: str, **spec: Any) -> dict[str, Any]:
    body = {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1"}]}}}
    body.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NS}, "spec": body}


def refusal(call: Any, code: int = 422) -> dict[str, Any]:
    """The Status the cluster answers a refused write with."""
    with pytest.raises(urllib.error.HTTPError) as info:
        call()
    assert info.value.code == code, info.value
    body = info.value.status_body
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == code
    return body


def fields(status: dict[str, Any]) -> list[str]:
    return [c["field"] for c in status["details"]["causes"]]


def get_run(cluster: EmulatedCluster, name: str) -> dict[str, Any] | None:
    return cluster.get(API_VERSION, ftr.PLURAL, NS, name)


@pytest.mark.parametrize(("name", "spec", "field", "words"), [
    ("type", {"resources": {"gpus": "2"}}, "spec.resources.gpus", "of type 'integer'"),
    ("float-for-integer", {"resources": {"gpus": 1.5}}, "spec.resources.gpus", "of type 'integer'"),
    ("enum", {"cleanupPolicy": "Sometimes"}, "spec.cleanupPolicy", "Unsupported value"),
    ("minimum", {"lora": {"r": 0}}, "spec.lora.r", "less than the minimum"),
    ("exclusive", {"training": {"learningRate": 0.0}}, "spec.training.learningRate", "minimum"),
    ("pattern", {"stages": [{"name": "Chat_1", "dataset": {"source": "x", "format": "xlam"}}]},
     "spec.stages[0].name", "does not match"),
    ("max-length", {"baseModel": "m" * 513}, "spec.baseModel", "Too long: may have at most 512 characters"),
    ("max-items", {"stages": [{"name": f"s{i}", "dataset": {"source": "x", "format": "xlam"}} for i in range(9)]},
     "spec.stages", "Too long: may have at most 8 items"),
    ("max-properties", {"resources": {"nodeSelector": {f"k{i}": "v" for i in range(33)}}},
     "spec.resources.nodeSelector", "Too long: may have at most 32 properties"),
    ("required", {"stages": [{"name": "chat", "dataset": {"format": "xlam"}}]},
     "spec.stages[0].dataset.source", "Required value"),
    ("map-value", {"resources": {"nodeSelector": {"zone": 5}}}, "spec.resources.nodeSelector.zone",
     "of type 'string'"),
    ("cel", {"stages": [{"name": "a", "dataset": {"source": "x", "format": "xlam"}},
                        {"name": "a", "dataset": {"source": "y", "format": "xlam"}}]},
     "spec.stages", "stage names must be unique"),
    ("cel-toleration", {"resources": {"tolerations": [{"key": "gpu", "operator": "Exists", "value": "x"}]}},
     "spec.resources.tolerations[0]", "value must be empty when operator is Exists"),
])
def test_an_invalid_create_is_refused_naming_the_field_and_nothing_lands(
        cluster: EmulatedCluster, name: str, spec: dict[str, Any], field: str, words: str) -> None:
    status = refusal(lambda: cluster.create(run(f"bad-{name}", **spec)))
    assert status["reason"] == "Invalid" and status["details"]["kind"] == ftr.KIND
    assert field in fields(status), status
    assert words in status["message"] and f"{field}: " in status["message"], status["message"]
    assert get_run(cluster, f"bad-{name}") is None


def test_the_required_spec_and_a_name_are_required(cluster: EmulatedCluster) -> None:
    no_spec = run("no-spec")
    del no_spec["spec"]
    assert fields(refusal(lambda: cluster.create(no_spec))) == ["spec"]
    bad_name = run("Not_A_Name")
    assert set(fields(refusal(lambda: cluster.create(bad_name)))) == {"metadata.name"}


def test_unknown_fields_are_pruned_silently_and_defaults_filled(cluster: EmulatedCluster) -> None:
    manifest = run("pruned", extra={"a": 1}, lora={"r": 8, "rank": 8}, cleanupPolicy=None, hubTokenSecret=None,
                   resources={"nodeSelector": {"zone": None, "pool": "gpu"}})
    manifest["spec"]["stages"][0]["dataset"]["typo"] = True
    stored = cluster.create(manifest)
    spec = stored["spec"]
    assert "extra" not in spec and "rank" not in spec["lora"] and "typo" not in spec["stages"][0]["dataset"]
    assert spec["lora"]["r"] == 8 and spec["lora"]["alpha"] == 16, "a default fills an absent field"
    assert spec["cleanupPolicy"] == "Retain", "a null the schema does not allow is dropped, then defaulted"
    assert spec["resources"]["nodeSelector"] == {"pool": "gpu"}
    assert spec["hubTokenSecret"] is None, "a null the schema allows (nullable) stays"
    assert get_run(cluster, "pruned")["spec"] == spec
    # Under x-kubernetes-preserve-unknown-fields (status, where kopf keeps its own keys) nothing is pruned.
    patched = cluster.patch(API_VERSION, ftr.PLURAL, NS, "pruned", {"status": {"phase": "Running", "kopf": {"x": 1}}},
                            "status")
    assert patched["status"]["kopf"] == {"x": 1} and patched["status"]["phase"] == "Running"


def test_a_non_finite_number_is_not_json_and_nothing_lands(cluster: EmulatedCluster) -> None:
    cluster.create(run("nan"))
    before = get_run(cluster, "nan")
    for value in (float("nan"), float("inf"), float("-inf")):
        status = refusal(lambda v=value: cluster.patch(API_VERSION, ftr.PLURAL, NS, "nan",
                                                       {"status": {"phase": "Running", "loss": v}}, "status"), 400)
        assert status["reason"] == "BadRequest" and fields(status) == ["status.loss"]
    assert get_run(cluster, "nan") == before
    refusal(lambda: cluster.create(run("nan-create", training={"learningRate": float("nan")})), 400)
    assert get_run(cluster, "nan-create") is None


def test_a_status_write_with_one_bad_field_is_refused_whole(cluster: EmulatedCluster) -> None:
    cluster.create(run("whole"))
    good = {"phase": "Running", "currentStep": "prepare-chat", "observedGeneration": 1}
    cluster.patch(API_VERSION, ftr.PLURAL, NS, "whole", {"status": good}, "status")
    before = get_run(cluster, "whole")
    bad = {"phase": "Failed", "currentStep": None, "stages": [{"name": "chat", "phase": "Failed", "step": "7"}]}
    status = refusal(lambda: cluster.patch(API_VERSION, ftr.PLURAL, NS, "whole", {"status": bad}, "status"))
    assert fields(status) == ["status.stages[0].step"]
    assert get_run(cluster, "whole") == before, "nothing of a refused write lands"
    assert before["status"]["phase"] == "Running"


def test_the_status_subresource_separates_spec_and_status(cluster: EmulatedCluster) -> None:
    manifest = run("halves")
    manifest["status"] = {"phase": "Succeeded"}
    created = cluster.create(manifest)
    assert "status" not in created, "a create starts without status"
    generation, version = created["metadata"]["generation"], created["metadata"]["resourceVersion"]
    # A write to /status changes only status, and does not move the generation.
    after = cluster.patch(API_VERSION, ftr.PLURAL, NS, "halves",
                          {"spec": {"cleanupPolicy": "Delete"}, "status": {"phase": "Running"}}, "status")
    assert after["spec"]["cleanupPolicy"] == "Retain" and after["status"]["phase"] == "Running"
    assert after["metadata"]["generation"] == generation and after["metadata"]["resourceVersion"] != version
    # A write to the object changes anything but status, and moves the generation when the spec changes.
    after = cluster.patch(API_VERSION, ftr.PLURAL, NS, "halves",
                          {"spec": {"cleanupPolicy": "Delete"}, "status": {"phase": "Failed"}})
    assert after["spec"]["cleanupPolicy"] == "Delete" and after["status"]["phase"] == "Running"
    assert after["metadata"]["generation"] == generation + 1
    # A write that changes nothing stores nothing: the resourceVersion stays.
    again = cluster.patch(API_VERSION, ftr.PLURAL, NS, "halves", {"spec": {"cleanupPolicy": "Delete"}})
    assert again["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]


def test_transition_rules_see_the_old_object(cluster: EmulatedCluster) -> None:
    cluster.create(run("immutable", hubTokenSecret="hf"))
    before = get_run(cluster, "immutable")
    status = refusal(lambda: cluster.patch(API_VERSION, ftr.PLURAL, NS, "immutable", {"spec": {"baseModel": "other"}}))
    assert fields(status) == ["spec.baseModel"] and "immutable" in status["message"]
    status = refusal(lambda: cluster.patch(API_VERSION, ftr.PLURAL, NS, "immutable", {"spec": {"hubTokenSecret": None}}))
    assert fields(status) == ["spec"] and "hubTokenSecret is immutable" in status["message"]
    assert get_run(cluster, "immutable") == before
    # A scheduling field may change.
    cluster.patch(API_VERSION, ftr.PLURAL, NS, "immutable", {"spec": {"resources": {"gpus": 0}}})
    assert get_run(cluster, "immutable")["spec"]["resources"]["gpus"] == 0


def test_a_modelserve_status_holds_only_what_its_crd_declares(cluster: EmulatedCluster) -> None:
    """What an older operator wrote (a string digest among the numbers of a map, NaN) is refused: the status
    write whole, nothing of it stored."""
    cluster.create(serve("gated"))
    before = cluster.get(API_VERSION, ms.PLURAL, NS, "gated")
    old_shape = {"status": {"evaluations": {"r1": {"seed-tools": 0.6, "_suites": "4f2a"}}, "readyReplicas": 1}}
    status = refusal(lambda: cluster.patch(API_VERSION, ms.PLURAL, NS, "gated", old_shape, "status"))
    assert fields(status) == ["status.evaluations"] and "of type 'array'" in status["message"]
    evaluation = {"revision": "r1", "suitesDigest": "4f2a", "complete": True, "suites": {"seed-tools": {}}}
    for figure, code, field in ((float("nan"), 400, "status.evaluations[0].suites.seed-tools.accuracy"),
                                (1.5, 422, "status.evaluations[0].suites.seed-tools.accuracy"),
                                ("0.9", 422, "status.evaluations[0].suites.seed-tools.accuracy")):
        bad = copy.deepcopy(evaluation)
        bad["suites"]["seed-tools"]["accuracy"] = figure
        status = refusal(lambda b=bad: cluster.patch(API_VERSION, ms.PLURAL, NS, "gated",
                                                     {"status": {"evaluations": [b], "readyReplicas": 1}}, "status"),
                         code)
        assert fields(status) == [field], status
    assert cluster.get(API_VERSION, ms.PLURAL, NS, "gated") == before
    evaluation["suites"]["seed-tools"]["accuracy"] = 0.6
    stored = cluster.patch(API_VERSION, ms.PLURAL, NS, "gated", {"status": {"evaluations": [evaluation]}}, "status")
    assert stored["status"]["evaluations"][0]["suites"]["seed-tools"]["accuracy"] == 0.6


def test_the_modelserve_cel_rule_runs(cluster: EmulatedCluster) -> None:
    both = serve("two-sources")
    both["spec"]["model"]["hub"] = "Qwen/Qwen2.5-3B"
    status = refusal(lambda: cluster.create(both))
    assert fields(status) == ["spec.model"] and "name exactly one of fineTuneRun, uri and hub" in status["message"]


@pytest.mark.parametrize(("name", "manifest", "field"), [
    ("type", job("job-type", parallelism="2"), "spec.parallelism"),
    ("unknown", job("job-unknown", completionz=1), "spec.completionz"),
    ("nested", job("job-nested", template={"spec": {"containers": [{"name": "c", "image": 5}]}}),
     "spec.template.spec.containers[0].image"),
    ("required", job("job-required", template={"spec": {"containers": [{"image": "x"}]}}),
     "spec.template.spec.containers[0].name"),
    ("name", job("job-" + "x" * 60), "metadata.name"),
    ("label", {**job("job-label"), "metadata": {"name": "job-label", "namespace": NS, "labels": {"a": "x" * 64}}},
     "metadata.labels.a"),
])
def test_a_built_in_kind_is_checked_against_kubernetes_schema(cluster: EmulatedCluster, name: str,
                                                               manifest: dict[str, Any], field: str) -> None:
    status = refusal(lambda: cluster.create(manifest, plural="jobs"))
    assert field in fields(status), status
    assert cluster.get("batch/v1", "jobs", NS, manifest["metadata"]["name"]) is None


def test_a_built_in_status_write_is_checked_and_separated(cluster: EmulatedCluster) -> None:
    cluster.create(job("job-status"), plural="jobs")
    status = refusal(lambda: cluster.patch("batch/v1", "jobs", NS, "job-status", {"status": {"succeeded": "1"}},
                                           "status"))
    assert fields(status) == ["status.succeeded"]
    cluster.finish_job(NS, "job-status")
    after = cluster.get("batch/v1", "jobs", NS, "job-status")
    assert after["status"]["succeeded"] == 1
    cluster.patch("batch/v1", "jobs", NS, "job-status", {"status": {"succeeded": 0}})  # the object, not /status
    assert cluster.get("batch/v1", "jobs", NS, "job-status")["status"]["succeeded"] == 1


def test_an_outdated_crd_lets_any_spec_in_and_its_status_writes_are_still_checked() -> None:
    with EmulatedCluster(outdated_crds=True) as old:
        bad = run("old", resources={"gpus": "two"}, snake_case=1)
        stored = old.create(copy.deepcopy(bad))
        assert stored["spec"]["resources"] == {"gpus": "two"} and stored["spec"]["snake_case"] == 1
        # The spec the write does not change stands (validation ratcheting); the status is checked.
        old.patch(API_VERSION, ftr.PLURAL, NS, "old", {"status": {"phase": "Failed"}}, "status")
        status = refusal(lambda: old.patch(API_VERSION, ftr.PLURAL, NS, "old", {"status": {"phase": 3}}, "status"))
        assert fields(status) == ["status.phase"]
        assert old.get(API_VERSION, ftr.PLURAL, NS, "old")["status"]["phase"] == "Failed"


def test_a_jobset_is_checked_against_its_published_crd(cluster: EmulatedCluster) -> None:
    jobset = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": "js", "namespace": NS},
              "spec": {"suspend": "yes", "replicatedJobs": []}}
    status = refusal(lambda: cluster.create(jobset, plural="jobsets"))
    assert fields(status) == ["spec.suspend"] and status["details"]["kind"] == "JobSet"
    assert cluster.get("jobset.x-k8s.io/v1alpha2", "jobsets", NS, "js") is None
