"""SmolLM2-135M-Instruct served by vLLM (and by the `transformers serve` fallback) and run in-process, on
the same small slice."""

from __future__ import annotations

import json

import pytest

from kubetune_jobs.cli import main
from kubetune_jobs.models import resolve
from kubetune_jobs.serving.template import servable_copy
from kubetune_jobs.serving.transformers_server import LocalServer

SLICE = ["--suite", "seed-tools", "--suite", "bfcl-simple_python", "--limit", "3", "--max-new-tokens", "24"]


@pytest.fixture(scope="module")
def served_model(tmp_path_factory):
    return servable_copy(resolve("bundled:smollm2-135m"), tmp_path_factory.mktemp("smollm2") / "model")


def check_well_formed(report, n):
    assert report["complete"] is True and len(report["items"]) == n
    for rec in report["items"]:
        assert isinstance(rec["passed"], bool) and rec["scored"] is True
        assert rec["passed"] or rec["reason"]
        assert rec["latency_s"] is not None and rec["latency_s"] > 0
    for suite, agg in report["suites"].items():
        assert agg["items"] == 3, suite
        assert 0 <= agg["accuracy"] <= 1 and agg["latency_p50_s"] <= agg["latency_p95_s"]


@pytest.mark.slow
def test_vllm_and_in_process_agree_item_by_item_where_the_text_agrees(tmp_path, vllm_server, servable_smollm2):
    """The same model served by vLLM and run in-process: wherever both generated the same text (vLLM's raw
    generation, read back from its token ids), the verdict, the calls and the cut-off are the same."""
    rc = main(["evaluate", *SLICE, "--endpoint", vllm_server.base_url, "--model", vllm_server.model,
               "--concurrency", "4", "--output", str(tmp_path / "http")])
    assert rc == 0
    rc = main(["evaluate", *SLICE, "--local-model", str(servable_smollm2), "--batch-size", "4",
               "--output", str(tmp_path / "local")])
    assert rc == 0
    http = json.loads((tmp_path / "http" / "report.json").read_text())
    local = json.loads((tmp_path / "local" / "report.json").read_text())
    check_well_formed(http, 6)
    check_well_formed(local, 6)
    assert [r["id"] for r in http["items"]] == [r["id"] for r in local["items"]]
    assert all(r.get("raw") is not None for r in http["items"]), "vLLM's raw generation is recorded"
    same = [(a, b) for a, b in zip(http["items"], local["items"], strict=True) if a["raw"] == b["raw"]]
    print(f"items compared: {len(same)} of {len(http['items'])} generated the same text through vLLM and in-process")
    assert same
    for a, b in same:
        assert (a["passed"], a["calls"], a["unparseable"], a["called"], a["cut_off"]) == (
            b["passed"], b["calls"], b["unparseable"], b["called"], b["cut_off"]), a["id"]
    assert (tmp_path / "http" / "report.md").read_text().count("| seed-tools |") >= 1


@pytest.mark.slow
def test_the_transformers_serve_fallback_still_serves_and_scores(tmp_path, served_model):
    """Where vLLM cannot run, `transformers serve` is the labelled fallback: the same API, scored the same way."""
    with LocalServer(served_model) as server:
        rc = main(["evaluate", *SLICE, "--endpoint", server.base_url, "--model", server.model,
                   "--concurrency", "4", "--output", str(tmp_path / "http")])
    assert rc == 0
    check_well_formed(json.loads((tmp_path / "http" / "report.json").read_text()), 6)
