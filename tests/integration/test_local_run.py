"""`kubetune run`: the operator's plan executed locally, end to end, on a reduced quickstart.

One run is shared by the tests below: it is interrupted with Ctrl-C (SIGINT to its process group) during
stage 2, which must leave a checkpoint of the step it stopped at; then run again, it must finish without
redoing preparation or stage 1, resuming stage 2 from that checkpoint. It goes through every step of the
plan with the bundled model and data, but trains only as much as that takes (the cheapest steps: LoRA on the
top two layers, short rows): what training teaches is tested on a run of its own, served through the
promotion gate (test_local_run_gate.py), which runs beside this module on the other worker.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.quickstart_run import QUICKSTART, kubetune, reduced_quickstart

# The reduced run's in-process evaluation: the final stage's (which models a plan evaluates is tested on the
# plan itself, tests/unit/test_operator_plan.py).
EVALUATED = ("tools",)
pytestmark = pytest.mark.slow


def through_every_step(spec: dict[str, Any]) -> None:
    spec["lora"]["topLayers"] = 2
    spec["training"].update(maxSteps=2, saveSteps=1000, batchSize=2, maxSeqLength=512)
    spec["stages"][0]["dataset"]["maxSamples"] = 24
    spec["stages"][1]["dataset"]["maxSamples"] = 48
    # No periodic checkpoint in stage 2: the only one is what Ctrl-C makes the job write.
    spec["stages"][1]["training"] = {"maxSteps": 6, "saveSteps": 1000}
    for suite in spec["evaluation"]["suites"]:
        suite["limit"] = 2
    spec["evaluation"].update(evaluateBase=False, evaluateEveryStage=False)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("local-run")
    manifest = reduced_quickstart(tmp, "quickstart-ci", through_every_step)
    store = tmp / "store"
    run_root = store / "default" / "quickstart-ci"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    first = kubetune("run", str(manifest), "--store", str(store), env=env)
    # Ctrl-C at a terminal (SIGINT to the whole process group) once stage 2 has trained a step.
    tools = run_root / "stages" / "tools"
    deadline = time.monotonic() + 1500
    while time.monotonic() < deadline and first.poll() is None:
        try:
            if json.loads((tools / "progress.json").read_text()).get("step", 0) >= 1:
                break
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.5)
    assert first.poll() is None, f"run ended before stage 2 trained a step:\n{first.stdout.read()}"
    before = {p: p.stat().st_mtime_ns for p in (run_root / "data").rglob("*") if p.is_file()}
    stage1 = (run_root / "stages" / "chat" / "merged" / "_COMPLETE").stat().st_mtime_ns
    os.killpg(first.pid, signal.SIGINT)
    out1, _ = first.communicate(timeout=300)
    assert first.returncode == 130, out1
    assert "saves a checkpoint after its current step" in " ".join(out1.split()), out1  # rich wraps lines
    assert not (tools / "merged" / "_COMPLETE").exists()
    interrupted = json.loads((tools / "progress.json").read_text())
    assert interrupted["state"] == "preempted", interrupted
    # The interrupt's own checkpoint, at the step training stopped.
    assert sorted(p.name for p in (tools / "checkpoints").glob("step-*") if (p / "_COMPLETE").exists()) == [
        f"step-{interrupted['step']}"]

    second = kubetune("run", str(manifest), "--store", str(store), env=env)
    out2, _ = second.communicate(timeout=1800)
    assert second.returncode == 0, out2
    return {"root": run_root, "out1": out1, "out2": out2, "data_mtimes": before, "stage1_mtime": stage1,
            "manifest": manifest, "interrupted_step": interrupted["step"]}


def test_rerun_skips_finished_steps_and_resumes_training(finished_run: dict) -> None:
    out = finished_run["out2"]
    for step in ("prepare-chat", "prepare-tools", "train-chat"):
        assert f"{step}: already done, skipped" in out
    root: Path = finished_run["root"]
    after = {p: p.stat().st_mtime_ns for p in finished_run["data_mtimes"]}
    assert after == finished_run["data_mtimes"], "preparation was redone"
    assert (root / "stages" / "chat" / "merged" / "_COMPLETE").stat().st_mtime_ns == finished_run["stage1_mtime"]
    log = (root / "logs" / "train-tools.log").read_text()
    assert f"resuming from checkpoint step {finished_run['interrupted_step']}" in log, \
        "stage 2 did not resume from the checkpoint Ctrl-C made it write"


def test_artifacts_and_reports(finished_run: dict) -> None:
    root: Path = finished_run["root"]
    for stage in ("chat", "tools"):
        assert (root / "data" / stage / "stats.json").exists()
        assert (root / "stages" / stage / "adapter" / "_COMPLETE").exists()
        assert (root / "stages" / stage / "merged" / "_COMPLETE").exists()
    reports = {label: json.loads((root / "eval" / label / "report.json").read_text())
               for label in EVALUATED}
    assert not (root / "eval" / "chat").exists() and not (root / "eval" / "base").exists()  # both false
    for report in reports.values():
        assert report["complete"] is True
        suites = {item["suite"] for item in report["items"]}
        assert suites == {"seed-tools", "bfcl-simple_python", "bfcl-irrelevance"}
    summary = finished_run["out2"]
    assert "| suite | category | metric | tools |" in summary  # the run's table of scores


def test_the_run_report_opens_in_a_browser_with_every_point_and_no_request(finished_run: dict,
                                                                          tmp_path: Path) -> None:
    """The report.html `kubetune run` wrote, opened in headless chromium: nothing from the network, every chart
    with the points it says it has, the training curve of stage 2 whole across the interrupt."""
    import re

    from support.browser import browse

    page = finished_run["root"] / "report.html"
    assert f"report: {page}" in " ".join(finished_run["out2"].split())
    seen = browse(page, screenshot=tmp_path / "report.png")
    print(f"report screenshot: {seen.screenshot}")
    assert seen.requests == []
    counts = [int(n) for n in re.findall(r'data-points="(\d+)"', seen.dom)]
    assert counts and all(counts) and sum(counts) == len(re.findall(r'class="point"', seen.dom))
    steps = [int(x) for x in re.findall(r'data-series="training loss" data-x="(\d+)"',
                                        seen.dom.split('aria-label="tools: loss over steps"')[1].split("</svg>")[0])]
    assert steps == list(range(1, 7)), steps  # 6 steps, those before the interrupt kept on resuming


def test_every_generation_reads_as_vllms_hermes_parser_reads_it(finished_run: dict, servable_smollm2: Path) -> None:
    from support.hermes import compare_report

    root: Path = finished_run["root"]
    compared = {label: compare_report(json.loads((root / "eval" / label / "report.json").read_text()),
                                      servable_smollm2)
                for label in EVALUATED}
    print(f"generations compared with vLLM's hermes parser: {compared}")
    assert all(compared.values()), compared  # the local evaluator records every raw generation


def test_invalid_manifest_stops_before_any_work(tmp_path: Path) -> None:
    doc = yaml.safe_load(QUICKSTART.read_text())
    doc["spec"]["stages"][1]["dataset"]["format"] = "sharegpt"
    doc["spec"]["lora"]["r"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    store = tmp_path / "store"
    proc = kubetune("run", str(bad), "--store", str(store))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "spec.stages[1].dataset.format" in out and "spec.lora.r" in out
    assert not store.exists()

    from kubetune_operator.finetunerun import api

    with pytest.raises(api.SpecError) as info:
        api.RESOURCE.parse_manifest(doc)
    # The operator reports the very same messages.
    assert str(info.value).split("; ")[0] in out
