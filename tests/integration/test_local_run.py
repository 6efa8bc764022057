"""`kubetune run`: the operator's plan executed locally, end to end, on a reduced quickstart.

One run is shared by the tests below (it trains and evaluates a real model for minutes on CPU):
it is interrupted with Ctrl-C (SIGINT to its process group) during stage 2, which must leave a
checkpoint of the step it stopped at; then run again, it must finish without redoing preparation or
stage 1, resuming stage 2 from that checkpoint. Its models are the ones the vLLM gate below serves, and
the two together are the suite's proof that training teaches SmolLM2-135M to call tools (held-out BFCL
calls before and after, as the gate scores them through vLLM).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from support.process_tree import cmdline, left, tree

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "manifests" / "examples" / "quickstart.yaml"
# The reduced run's in-process evaluation: the final stage's. (The base model is scored by the gate below,
# through vLLM, on the same items; evaluating it in-process too cost the critical path of `make test` ~100 s.)
EVALUATED = ("tools",)
pytestmark = pytest.mark.slow


def reduced_quickstart(dest: Path) -> Path:
    """The quickstart with fewer steps and smaller slices, everything else as shipped."""
    doc = yaml.safe_load(QUICKSTART.read_text())
    doc["metadata"]["name"] = "quickstart-ci"
    spec = doc["spec"]
    spec["training"].update(maxSteps=3, saveSteps=2)
    spec["stages"][0]["dataset"]["maxSamples"] = 60
    spec["stages"][1]["dataset"]["maxSamples"] = 200
    # No periodic checkpoint in stage 2: the only one is what Ctrl-C makes the job write.
    spec["stages"][1]["training"].update(maxSteps=12, saveSteps=1000)
    for suite in spec["evaluation"]["suites"]:
        suite["limit"] = 4  # the run's own evaluation; the gate below scores 8 per suite
    # The final stage only. The base and stage-1 models are evaluated by the gate below (through vLLM, on the
    # same items); which models a plan evaluates is tested on the plan itself (tests/unit/test_operator_plan.py).
    spec["evaluation"].update(evaluateBase=False, evaluateEveryStage=False)
    path = dest / "quickstart-ci.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def kubetune(*args: str, env: dict | None = None) -> subprocess.Popen:
    # A wide terminal, so rich does not wrap the messages the tests look for.
    env = {**(env or os.environ), "COLUMNS": "400", "PYTHONUNBUFFERED": "1"}
    # A shell running this suite in the background hands its children SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler; restore the default so the interrupt below is Ctrl-C's.
    # Its own session, so a Ctrl-C can go to its whole process group as a terminal's does.
    return subprocess.Popen([sys.executable, "-m", "kubetune_local.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("local-run")
    manifest = reduced_quickstart(tmp)
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


def test_every_generation_reads_as_vllms_hermes_parser_reads_it(finished_run: dict, servable_smollm2: Path) -> None:
    from support.hermes import compare_report

    root: Path = finished_run["root"]
    compared = {label: compare_report(json.loads((root / "eval" / label / "report.json").read_text()),
                                      servable_smollm2)
                for label in EVALUATED}
    print(f"generations compared with vLLM's hermes parser: {compared}")
    assert all(compared.values()), compared  # the local evaluator records every raw generation


# ---------------------------------------------------------------- serving the run's models with real vLLM

GATE_SUITES = [{"name": "seed-tools", "limit": 8}, {"name": "bfcl-simple_python", "limit": 8}]


def serve_manifest(dest: Path, name: str, stage: str | None = None) -> Path:
    """A ModelServe of the run's model (or one stage's), gated on the run's suites with its answer length (eight
    items each where the run evaluated the first four), so its endpoint evaluations can be compared item by item
    with the run's in-process ones."""
    ref = {"name": "quickstart-ci", **({"stage": stage} if stage else {})}
    doc = {"apiVersion": "kubetune.io/v1alpha1", "kind": "ModelServe", "metadata": {"name": name, "namespace": "default"},
           "spec": {"model": {"fineTuneRun": ref}, "servedModelName": "quickstart",
                    "vllm": {"dtype": "bfloat16", "maxModelLen": 4096, "extraArgs": ["--enforce-eager", "--seed", "0"]},
                    "resources": {"gpus": 0},
                    "promotion": {"enabled": True, "suites": GATE_SUITES, "maxNewTokens": 128,
                                  "gate": {"minMargin": 0.01}}}}
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
    tuned = kubetune("serve", str(serve_manifest(tmp, "tuned")), "--store", store, "--against",
                     "bundled:smollm2-135m", "--port", str(free_port()))
    reply, serving, started = None, [], []
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
            "reply": reply, "serving": started, "left": left(serving)}


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


def test_the_gate_rejects_a_worse_candidate(gates: dict) -> None:
    rc, out, _ = gates["stage-one"]
    assert rc == 3 and "gate: rejected" in " ".join(out.split()) and "minMargin" in out, out


def _accuracy(report: dict, suites: set[str]) -> float:
    items = [i for i in report["items"] if i["suite"] in suites]
    return sum(i["passed"] for i in items) / len(items)


def test_stage_two_teaches_the_model_to_call_tools(finished_run: dict, gates: dict) -> None:
    """Learning, not "ran": the held-out loss falls by more than half, and BFCL simple_python (real BFCL
    prompts and tools, none of them in our training data) goes from the base model's score to at least three
    more of its eight items called exactly right, in the precision `auto` picked on this CPU. Both models are
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
    assert progress["eval_loss"] < 0.5 * progress["eval_loss_start"]
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
        api.parse_manifest(doc)
    # The operator reports the very same messages.
    assert str(info.value).split("; ")[0] in out
