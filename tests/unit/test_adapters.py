"""spec.adapters without a cluster: the set's records and checks (the contract both sides share), what the
operator resolves and decides, the objects it builds, and what it refuses. The agent against real vLLM is
tests/integration/test_vllm_adapters.py; the operator with kopf, tests/integration/test_modelserve_kopf.py."""

from __future__ import annotations

import json

import pytest
from test_modelserve_reconcile import decide, obs
from test_modelserve_resources import BUILD, spec, target

from kubetune_jobs.contract import adapters as contract
from kubetune_jobs.contract.layout import marker_digest
from kubetune_jobs.contract.records import AdapterSet, AdapterState, ReplicaAdapters, Wanted, read
from kubetune_operator.modelserve import adapters, api, resources, source, validation
from kubetune_operator.modelserve.api import AdapterStatus, ModelServeStatus, ServedModel

D1, D2 = "1" * 64, "2" * 64


def w(name: str, digest: str = D1) -> Wanted:
    return Wanted(name=name, uri=f"s3://bkt/{name}", digest=digest)


# ---------------------------------------------------------------- the contract


def test_the_plan_unloads_what_the_set_dropped_loads_what_is_new_and_swaps_what_changed() -> None:
    wanted = [w("a"), w("b"), w("c"), w("d")]
    placed = {"a": "/ad/a-1", "b": "/ad/b-2", "c": "/ad/c-1"}  # d could not be placed
    loaded = {"a": "/ad/a-1", "b": "/ad/b-1", "old": "/ad/old-1", "d": "/ad/d-1"}
    p = contract.plan(wanted, placed, loaded)
    assert p.unload == ("old",)
    assert [x.name for x in p.load] == ["c"] and [x.name for x in p.replace] == ["b"]
    # d stays as the server has it: a version that cannot be placed now does not take down the one serving.
    assert contract.plan([], {}, {}) == contract.Plan()


def test_the_servers_listing_is_read_as_untrusted() -> None:
    body = {"data": [{"id": "base", "parent": None, "root": "/m"}, {"id": "a", "parent": "base", "root": "/ad/a"},
                     {"id": "x", "parent": "other-base", "root": "/ad/x"}, {"id": 7, "parent": "base"},
                     {"id": "b", "parent": "base", "root": None}, "junk"]}
    assert contract.served(body, "base") == {"a": "/ad/a", "b": ""}
    for junk in (None, [], {"data": "x"}, "text", {"data": [None]}):
        assert contract.served(junk, "base") == {}


@pytest.mark.parametrize(("config", "why"), [
    ({"r": 16, "lora_alpha": 32}, "rank 16 exceeds the server's --max-lora-rank 8"),
    ({"r": True}, "r is not a positive integer"),
    ({"r": 0}, "r is not a positive integer"),
    ({"r": "8"}, "r is not a positive integer"),
    ({"r": 8, "lora_alpha": float("nan")}, "lora_alpha is not a positive number"),
    ({"r": 8, "use_dora": True}, "DoRA"),
    ({"r": 8, "modules_to_save": ["lm_head"]}, "modules_to_save"),
    ({"r": 8, "peft_type": "IA3"}, "is not LORA"),
    ([1, 2], "not a JSON object"),
])
def test_an_adapter_the_server_cannot_serve_is_named_with_why(config: object, why: str) -> None:
    assert why in (contract.config_problem(json.dumps(config).encode(), 8) or "")


def test_a_servable_adapter_and_broken_json() -> None:
    assert contract.config_problem(b'{"r": 8, "lora_alpha": 16, "peft_type": "LORA"}', 8) is None
    assert "not JSON" in (contract.config_problem(b"{" * 100_000, 8) or "")
    assert "not JSON" in (contract.config_problem(b"\xff\xfe", 8) or "")


def test_a_set_is_validated_as_it_is_read() -> None:
    ok = AdapterSet(base="m", max_rank=8, adapters=[w("a"), w("b")]).dump()
    assert read(AdapterSet, json.dumps(ok)) is not None
    bad = [
        {**ok, "adapters": [w("a").dump(), w("a").dump()]},  # a name twice
        {**ok, "adapters": [{**w("a").dump(), "digest": "abc"}]},
        {**ok, "adapters": [{**w("a").dump(), "name": "A/../x"}]},
        {**ok, "adapters": [{**w("a").dump(), "uri": "s3://bkt/a\nx"}]},
        {**ok, "max_rank": 0},
        {"base": "m"},
    ]
    for body in bad:
        assert read(AdapterSet, json.dumps(body)) is None, body
    assert read(AdapterSet, b"[") is None and read(AdapterSet, None) is None


# ---------------------------------------------------------------- the operator: resolving and deciding

def run(base: str = "Qwen/Qwen2.5-3B", phase: str = "Succeeded", adapter: str | None = "s3://bkt/run/adapter") -> dict:
    return {"spec": {"baseModel": base, "stages": [{"name": "tools"}]},
            "status": {"phase": phase, "artifacts": {"adapters": {"tools": adapter} if adapter else {}}}}


def hub_spec(**over) -> api.ModelServeSpec:
    return spec(model={"hub": "Qwen/Qwen2.5-3B"}, adapters=[{"name": "billing", "fineTuneRun": {"name": "ft-b"}},
                                                            {"name": "support", "uri": "s3://bkt/support"}], **over)


def test_an_adapter_is_located_waits_for_its_run_or_is_refused_naming_its_field() -> None:
    s = hub_spec()
    base = target(s)
    found = adapters.locate(s, 0, run(), base)
    assert found == adapters.Located("billing", "finetunerun/ft-b", "s3://bkt/run/adapter")
    assert adapters.locate(s, 1, None, base) == adapters.Located("support", "s3://bkt/support", "s3://bkt/support")
    cases = {
        "RunNotFound": (None, "spec.adapters[0].fineTuneRun.name: FineTuneRun 'ft-b' not found"),
        "RunFailed": (run(phase="Failed"), "failed"),
        "AdapterNotFound": (run(adapter=None), "records no adapter for stage 'tools'"),
        # Trained on another model: vLLM would load it if the shapes fit, and answer with nonsense.
        "BaseMismatch": (run(base="Qwen/Qwen2.5-7B"), "trained on Qwen/Qwen2.5-7B, and this serve serves "
                                                       "Qwen/Qwen2.5-3B"),
    }
    for reason, (obj, message) in cases.items():
        r = adapters.locate(s, 0, obj, base)
        assert isinstance(r, source.Unavailable) and r.reason == reason and message in r.message, (reason, r)
    waiting = adapters.locate(s, 0, run(phase="Running"), base)
    assert isinstance(waiting, source.Waiting) and "spec.adapters[0]" in waiting.message
    assert isinstance(adapters.with_marker(found, None), source.Unavailable)
    assert adapters.with_marker(found, b"{}").digest == marker_digest(b"{}")


def report(pod: str, *states: tuple[str, str, str, str | None]) -> ReplicaAdapters:
    return ReplicaAdapters(created="2026-12-08T00:00:00+00:00", replica=pod, adapters=[
        AdapterState(name=n, digest=d, state=st, reason=why) for n, d, st, why in states])


def test_an_adapter_is_ready_when_every_ready_replica_serves_its_content() -> None:
    s = hub_spec()
    found = [adapters.Located("billing", "finetunerun/ft-b", "s3://bkt/run/adapter", D1),
             adapters.Located("support", "s3://bkt/support", "s3://bkt/support", D2)]
    reports = {"pod-a": report("pod-a", ("billing", D1, "Loaded", None), ("support", D2, "Loaded", None)),
               "pod-b": report("pod-b", ("billing", D1, "Loaded", None),
                               ("support", D2, "Failed", "the server refused it: HTTP 400: no room"))}
    billing, support = adapters.statuses(s, found, reports, [])
    assert billing.state == "Ready" and billing.replicas == ["pod-a", "pod-b"]
    assert support.state == "Failed" and support.replicas == ["pod-a"]
    assert "pod-b: the server refused it: HTTP 400: no room" in (support.message or "")
    assert adapters.ready([billing, support]) == "1/2"
    # A replica that has not reported, or reported an older content, is still loading it.
    stale = {"pod-a": report("pod-a", ("billing", D2, "Loaded", None)), "pod-b": None}
    (billing, _) = adapters.statuses(s, found, stale, [])
    assert billing.state == "Loading" and billing.replicas == [] and "0 of 2" in (billing.message or "")
    nobody = adapters.statuses(s, found, {}, [])
    assert {x.state for x in nobody} == {"Loading"}


def test_a_waiting_adapter_keeps_serving_and_an_unavailable_one_leaves_the_set() -> None:
    s = hub_spec()
    before = [AdapterStatus(name="billing", source="finetunerun/ft-b", uri="s3://bkt/old", digest=D1, state="Ready",
                            replicas=["p1"]),
              AdapterStatus(name="support", source="s3://bkt/support", uri="s3://bkt/support", digest=D2, state="Ready")]
    now = [source.Waiting("StoreUnreachable", "cannot read"), source.Unavailable("AdapterNotFound", "gone")]
    the_set = adapters.adapter_set(s, "assistant", now, before)
    assert [(x.name, x.uri, x.digest) for x in the_set.adapters] == [("billing", "s3://bkt/old", D1)]
    assert the_set.base == "assistant" and the_set.max_rank == s.model.lora.max_rank
    # A wait that lasts: every later reconcile still keeps it (the status carries what the set needs).
    states = adapters.statuses(s, now, {}, before)
    assert (states[0].state, states[0].uri, states[0].digest) == ("Waiting", "s3://bkt/old", D1)
    for _ in range(3):
        states = adapters.statuses(s, now, {}, states)
        assert [x.name for x in adapters.adapter_set(s, "assistant", now, states).adapters] == ["billing"]


def test_the_decision_writes_the_set_and_each_adapters_state_as_an_api_server_admits_it() -> None:
    s = hub_spec()
    t = target(s)
    rev = source.revision(s, t, BUILD.served_name, BUILD.vllm_image)
    from kubetune_operator.modelserve.reconcile import DeploymentView

    serving = ModelServeStatus(model=ServedModel(revision=rev, source=t.source, hub=t.hub))
    found = [adapters.Located("billing", "finetunerun/ft-b", "s3://bkt/run/adapter", D1),
             source.Unavailable("BaseMismatch", "spec.adapters[1]: trained on another model")]
    o = obs(s, t, status=serving, deployments={rev: DeploymentView(f"assistant-{rev}", rev, 2, 2)},
            adapters=found, adapter_reports={"p1": report("p1", ("billing", D1, "Loaded", None)), "p2": None})
    d = decide(o)
    (cm,) = [m for m in d.apply if m["kind"] == "ConfigMap" and m["metadata"]["name"] == "assistant-adapters"]
    the_set = read(AdapterSet, cm["data"]["adapters.json"])
    assert the_set is not None and [x.name for x in the_set.adapters] == ["billing"]
    assert [(a.name, a.state) for a in d.status.adapters] == [("billing", "Loading"), ("support", "Failed")]
    assert d.status.adapters_ready == "0/2" and "trained on another model" in (d.status.adapters[1].message or "")
    # The last adapter removed: the set is emptied (pods keep a deleted ConfigMap's last file), the status cleared.
    bare = spec(model={"hub": "Qwen/Qwen2.5-3B"})
    d2 = decide(obs(bare, target(bare), status=d.status))
    (cm,) = [m for m in d2.apply if m["kind"] == "ConfigMap"]
    assert read(AdapterSet, cm["data"]["adapters.json"]).adapters == [] and d2.status.adapters == []


def test_every_replica_runs_the_agent_beside_vllm_with_lora_on_and_no_adapter_in_its_argv() -> None:
    s = hub_spec()
    t = target(s)
    dep = resources.deployment(s, BUILD, "r1", t, 2)
    pod = dep["spec"]["template"]["spec"]
    server, agent = pod["containers"]
    args = server["args"]
    assert "--enable-lora" in args and args[args.index("--max-loras") + 1] == "4" and "--lora-modules" not in args
    assert {"name": contract.RUNTIME_UPDATES_ENV, "value": "True"} in server["env"]
    assert agent["args"][:3] == ["adapters", "--endpoint", "http://127.0.0.1:8000"]
    assert "--replica" in agent["args"] and agent["args"][agent["args"].index("--replica") + 1] == "$(POD_NAME)"
    shared = {m["mountPath"] for m in server["volumeMounts"]} & {m["mountPath"] for m in agent["volumeMounts"]}
    assert resources.ADAPTERS_DIR in shared
    cm_volume = next(v for v in pod["volumes"] if v["name"] == "adapter-set")
    assert cm_volume["configMap"] == {"name": "assistant-adapters", "optional": True}
    # Which adapters is not the revision's: the set changes in place. LoRA itself on or off is.
    other = spec(model={"hub": "Qwen/Qwen2.5-3B"}, adapters=[{"name": "x", "uri": "s3://bkt/x"}])
    none = spec(model={"hub": "Qwen/Qwen2.5-3B"})
    rev = source.revision(s, t, "assistant", BUILD.vllm_image)
    assert source.revision(other, target(other), "assistant", BUILD.vllm_image) == rev
    assert source.revision(none, target(none), "assistant", BUILD.vllm_image) != rev


def test_adapters_are_refused_where_they_would_go_live_ungated_or_clash() -> None:
    gated = hub_spec(promotion={"enabled": True})
    assert any(p.startswith("spec.adapters: adapters are not gated") for p in validation.problems(gated))
    clash = spec(model={"hub": "Qwen/Qwen2.5-3B"}, servedModelName="billing",
                 adapters=[{"name": "billing", "uri": "s3://bkt/x"}])
    assert "spec.adapters[0].name: 'billing' is the base model's name (spec.servedModelName)" in validation.problems(clash)
    for bad, why in (([{"name": "a", "uri": "s3://bkt/x"}, {"name": "a", "uri": "s3://bkt/y"}], "each name once"),
                     ([{"name": "a"}], "exactly one of fineTuneRun and uri"),
                     ([{"name": "A_b", "uri": "s3://bkt/x"}], "pattern")):
        with pytest.raises(api.SpecError, match=why):
            spec(model={"hub": "Qwen/Qwen2.5-3B"}, adapters=bad)
    with pytest.raises(api.SpecError, match="not model.lora.enabled"):
        spec(model={"fineTuneRun": {"name": "ft"}, "lora": {"enabled": True}}, adapters=[{"name": "a", "uri": "s3://bkt/x"}])
