"""The promotion gate on a run that learnt: `kubetune run` trains the reduced quickstart, and `kubetune serve
--against` serves its models with real vLLM and gates them, as a user would after `make demo`.

The run trains stage 2 for as long as the learning assertion needs (LoRA on the top layers, shorter and fewer
steps than the demo's; the demo's own figures are in BENCHMARKS.md): this module and the run's
interrupt-and-resume (test_local_run.py) are the two longest units of the suite and run side by side. Its
models are the ones the gate serves, and the two together are the suite's proof that training teaches
SmolLM2-135M to call tools (held-out BFCL calls before and after, as the gate scores them through vLLM).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.process_tree import cmdline, left, tree
from support.quickstart_run import QUICKSTART, kubetune, reduced_quickstart
from support.served_model import served_dtype

pytestmark = pytest.mark.slow
RUN = "quickstart-gate"
STAGE_TWO = {"maxSteps": 12, "learningRate": 0.002, "saveSteps": 1000}


def learns(spec: dict[str, Any]) -> None:
    """Stage 1 as short as a stage can be (the gate only needs a model that has not learnt to call); stage 2
    as long as learning takes. The run evaluates its final stage in-process on the first four items of
    each suite (the gate scores eight through vLLM, and the two are compared item by item)."""
    spec["training"].update(maxSteps=2, saveSteps=1000)
    spec["stages"][0]["dataset"]["maxSamples"] = 24
    spec["stages"][1]["dataset"]["maxSamples"] = 200
    spec["stages"][1]["training"] = STAGE_TWO
    for suite in spec["evaluation"]["suites"]:
        suite["limit"] = 4
    spec["evaluation"].update(evaluateBase=False, evaluateEveryStage=False)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("local-run-gate")
    store = tmp / "store"
    done = kubetune("run", str(reduced_quickstart(tmp, RUN, learns)), "--store", str(store))
    out, _ = done.communicate(timeout=1800)
    assert done.returncode == 0, out
    return {"root": store / "default" / RUN, "out": out}


# ---------------------------------------------------------------- serving the run's models with real vLLM

GATE_SUITES = [{"name": "seed-tools", "limit": 8}, {"name": "bfcl-simple_python", "limit": 8}]
PROBE_SUITES = [{"name": "bfcl-simple_python", "limit": 4}]  # the live probe's set: a short round
# The answer length the run evaluated with (the demo's), so endpoint and in-process texts can be compared.
MAX_NEW_TOKENS = yaml.safe_load(QUICKSTART.read_text())["spec"]["evaluation"]["maxNewTokens"]


def serve_manifest(dest: Path, name: str, stage: str | None = None, probe: bool = False) -> Path:
    """A ModelServe of the run's model (or one stage's), gated on the run's suites with its answer length (eight
    items each where the run evaluated the first four), so its endpoint evaluations can be compared item by item
    with the run's in-process ones."""
    ref = {"name": RUN, **({"stage": stage} if stage else {})}
    doc = {"apiVersion": "kubetune.io/v1alpha1", "kind": "ModelServe", "metadata": {"name": name, "namespace": "default"},
           "spec": {"model": {"fineTuneRun": ref}, "servedModelName": "quickstart",
                    "vllm": {"dtype": served_dtype(), "maxModelLen": 4096, "extraArgs": ["--enforce-eager", "--seed", "0"]},
                    "resources": {"gpus": 0},
                    "promotion": {"enabled": True, "suites": GATE_SUITES, "maxNewTokens": MAX_NEW_TOKENS,
                                  "gate": {"minMargin": 0.01}},
                    # The live probe on the model once it serves (its first round's health line is read below).
                    "monitoring": {"probe": {"enabled": probe, "intervalSeconds": 60, "maxNewTokens": MAX_NEW_TOKENS,
                                             "suites": PROBE_SUITES}}}}
    path = dest / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _reports(out: str) -> list[Path]:
    """The report.json paths a gate printed, in order (serving, then candidate)."""
    return [Path(line.rsplit(": ", 1)[1].strip()) for line in out.splitlines()
            if line.strip().startswith("done in") and line.strip().endswith("report.json")]


def _serve_until_ready(proc: subprocess.Popen) -> tuple[str, str | None]:
    """What `kubetune serve` printed until it said where it serves (its endpoint), or until it ended."""
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.strip().startswith("serving at "):
            return "".join(lines), line.split()[2]
    proc.wait()
    return "".join(lines), None


@pytest.fixture(scope="module")
def gates(finished_run: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`kubetune serve --against`: the tuned model against the base model it came from, then served when
    promoted (one chat request with a tool, then Ctrl-C); then the stage-1 model against the tuned one (its
    recorded scores, as the operator reuses them)."""
    import openai

    from kubetune_jobs.serving.process import free_port

    tmp = tmp_path_factory.mktemp("gates")
    store = str(finished_run["root"].parent.parent)
    tuned = kubetune("serve", str(serve_manifest(tmp, "tuned", probe=True)), "--store", store, "--against",
                     "bundled:smollm2-135m", "--port", str(free_port()))
    reply, serving, started, health = None, [], [], None
    try:
        out1, endpoint = _serve_until_ready(tuned)
        if endpoint is not None:
            client = openai.OpenAI(base_url=endpoint, api_key="unused", timeout=300)
            reply = client.chat.completions.create(
                model="quickstart", max_tokens=64, temperature=0,
                messages=[{"role": "user", "content": "What is the weather in Lisbon today?"}],
                tools=[{"type": "function", "function": {
                    "name": "get_weather", "description": "Current weather for a city.",
                    "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                                   "required": ["location"]}}}])
            serving = tree(tuned.pid)  # the command, vLLM (in a session of its own) and vLLM's workers
            started = [cmdline(p) for p in serving]
            assert tuned.stdout is not None
            for line in tuned.stdout:  # until the live probe's first round ends
                out1 += line
                if "probe revision" in line and "accuracy" in line:
                    health = line
                    break
            os.killpg(tuned.pid, signal.SIGINT)
        rest, _ = tuned.communicate(timeout=300)
        out1 += rest
    finally:
        if tuned.poll() is None:
            os.killpg(tuned.pid, signal.SIGKILL)
    first = _reports(out1)
    assert len(first) == 2, out1
    worse = kubetune("serve", str(serve_manifest(tmp, "stage-one", stage="chat")), "--store", store, "--against",
                     str(first[1]), "--gate-only", "--port", str(free_port()))
    out2, _ = worse.communicate(timeout=1800)
    second = _reports(out2)
    assert worse.returncode in (0, 3) and len(second) == 1, out2
    return {"tuned": (tuned.returncode, out1, first), "stage-one": (worse.returncode, out2, second),
            "reply": reply, "serving": started, "left": left(serving), "health": health}


def test_the_gate_promotes_the_tuned_model_over_its_base_and_serves_it(gates: dict) -> None:
    rc, out, _ = gates["tuned"]
    assert "gate: promoted" in " ".join(out.split()), out
    # Promoted, it was served until Ctrl-C, which stops the server and ends the command cleanly: nothing it
    # started is left running.
    assert rc == 0 and "stopping the server" in out, out
    assert any("vllm.entrypoints" in line for line in gates["serving"]) and gates["left"] == [], gates["left"]
    reply = gates["reply"]
    assert reply is not None and reply.model == "quickstart" and reply.choices[0].finish_reason in (
        "stop", "length", "tool_calls")
    message = reply.choices[0].message
    # An OpenAI-compatible reply with tools: a call through vLLM's hermes parser, or an answer in content.
    assert (message.tool_calls and all(c.function.name for c in message.tool_calls)) or message.content


def test_the_live_probe_prints_the_served_models_health(gates: dict) -> None:
    """Once promoted and serving, `kubetune serve` probes the model as its clients see it (spec.monitoring.probe)
    and prints each round's health line: every request answered, the tuned model's calls counted."""
    line = gates["health"]
    assert line is not None, gates["tuned"][1]
    figures = dict(re.findall(r"(accuracy|unparseable|calls) (\d+)%", line))
    items = sum(s["limit"] for s in PROBE_SUITES)
    assert f"unanswered 0/{items}" in line and int(figures["accuracy"]) > 0 and int(figures["calls"]) > 0, line


def test_the_gate_rejects_a_worse_candidate(gates: dict) -> None:
    rc, out, _ = gates["stage-one"]
    assert rc == 3 and "gate: rejected" in " ".join(out.split()) and "minMargin" in out, out


def _accuracy(report: dict, suites: set[str]) -> float:
    items = [i for i in report["items"] if i["suite"] in suites]
    return sum(i["passed"] for i in items) / len(items)


def test_stage_two_teaches_the_model_to_call_tools(finished_run: dict, gates: dict) -> None:
    """Learning, not "ran": the held-out loss falls by more than a third (LoRA on the demo's top 12 layers, 12
    steps: 1.66 -> 0.94 on a 2-core AVX2 CPU; on every layer it fell by more than half), and BFCL simple_python
    (real BFCL prompts and tools, none of them in our training data) goes from the base model's score to at
    least three more of its eight items called exactly right, in the precision `auto` picked on this CPU. Both models are
    scored alike: served by vLLM and evaluated through its endpoint by the gate (the run's own in-process
    scores of the tuned model are printed beside them)."""
    root: Path = finished_run["root"]
    _, _, (base_report, tuned_report) = gates["tuned"]
    reports = {label: json.loads(path.read_text()) for label, path in (("base", base_report), ("tools", tuned_report))}
    in_process = json.loads((root / "eval" / "tools" / "report.json").read_text())
    progress = json.loads((root / "stages" / "tools" / "progress.json").read_text())
    suites = [s["name"] for s in GATE_SUITES]
    scores = {label: {suite: _accuracy(report, {suite}) for suite in suites} for label, report in reports.items()}
    print(f"stage 2 in {progress['precision']}: eval loss {progress['eval_loss_start']:.3f} -> "
          f"{progress['eval_loss']:.3f}; tool-call accuracy through vLLM {scores}; the tuned model in-process "
          f"{ {suite: _accuracy(in_process, {suite}) for suite in suites} }")
    assert progress["eval_loss"] < 2 / 3 * progress["eval_loss_start"]
    base, tuned = (_accuracy(reports[label], set(suites)) for label in ("base", "tools"))
    assert tuned > base, f"tool-calling accuracy after stage 2 {tuned:.2f} is not above the base model's {base:.2f}"
    held_out = {label: scores[label]["bfcl-simple_python"] for label in ("base", "tools")}
    assert held_out["tools"] >= held_out["base"] + 3 / 8, held_out
    # The merge on CPU is written in fp32 whatever the training precision, so nothing learnt is rounded away.
    assert json.loads((root / "stages" / "tools" / "merged" / "config.json").read_text())["dtype"] == "float32"


VERDICT_FIELDS = ("passed", "calls", "unparseable", "called")


def test_each_served_reply_scores_as_its_text_scores_in_process(gates: dict, finished_run: dict,
                                                               tmp_path: Path) -> None:
    """The gate scored what vLLM's hermes parser made of each reply. The very text of each (vLLM's own token
    ids, detokenized), scored as the run scores a local model's generation (our parser), gets the same
    verdict and calls, item by item. And where the run's in-process generation produced that same text
    (numerics permitting: vLLM's CPU kernels are not transformers'), its item agrees as well."""
    from kubetune_jobs.contract.options import EvaluateOptions
    from kubetune_jobs.contract.suites import suite_arg

    _, _, (_, served) = gates["tuned"]
    endpoint = {i["id"]: i for i in json.loads(served.read_text())["items"]}
    assert endpoint and all(isinstance(i.get("raw"), str) for i in endpoint.values()), "a reply without its text"
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps({"id": k, "text": i["raw"]}) + "\n" for k, i in endpoint.items()))
    summary = json.loads((finished_run["root"] / "summary.json").read_text())
    options = EvaluateOptions(predictions=str(predictions), data=tuple(summary["status"]["artifacts"]["datasets"].values()),
                              suite=tuple(suite_arg(s["name"], s["limit"]) for s in GATE_SUITES),
                              output=str(tmp_path / "rescored"))
    done = subprocess.run([sys.executable, "-m", "kubetune_jobs.cli", *options.command_line()], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    rescored = {i["id"]: i for i in json.loads((tmp_path / "rescored" / "report.json").read_text())["items"]}
    assert rescored.keys() == endpoint.keys()
    for k, item in endpoint.items():
        for field in VERDICT_FIELDS:
            assert rescored[k].get(field) == item.get(field), (k, field, item, rescored[k])

    local = {i["id"]: i for i in json.loads((finished_run["root"] / "eval" / "tools" / "report.json").read_text())[
        "items"] if i["suite"] in {s["name"] for s in GATE_SUITES}}
    same = [k for k in endpoint if k in local and endpoint[k]["raw"] == local[k].get("raw")]
    print(f"items whose generated text is the same through vLLM and in-process: {len(same)} of {len(endpoint)}")
    for k in same:
        for field in VERDICT_FIELDS:
            assert endpoint[k].get(field) == local[k].get(field), (k, field, endpoint[k], local[k])
