"""Many adapters on one base, with real vLLM (CPU build, its punica LoRA path): three adapters trained by the
project's own train job on the bundled SmolLM2, kept on a server by the adapter agent (`kubetune-job adapters`,
a real subprocess) as a replica keeps them.

- Each adapter that passes its checks answers under its own name, and differently from the base and from the
  other: it is applied, not silently ignored.
- One of too high a rank, one whose files fail their digest and one the set names with another digest are
  marked failed with their reasons, alone: the others and the base answer. vLLM refuses the high-rank one too,
  as the agent's check says it would.
- The server is killed and started again on the same port: the agent, still running, gives it the set back.
- The set loses an adapter: the agent unloads it; requests for it get vLLM's 404, the rest still answer.
- `kubetune serve` does the same on one machine: a FineTuneRun's model as the base, an adapter trained on it
  answering under its name, one trained on another base refused before anything is loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kubetune_jobs import cli, storage
from kubetune_jobs.contract import adapters as contract
from kubetune_jobs.contract.layout import ADAPTER_DIR, COMPLETE_MARKER, MERGED_DIR, RunLayout, marker_digest
from kubetune_jobs.contract.records import FAILED, LOADED, AdapterSet, ReplicaAdapters, Wanted, read
from kubetune_jobs.serving.adapters import Refused, RuntimeLora
from kubetune_jobs.serving.process import free_port
from kubetune_jobs.serving.vllm_server import VLLMServer
from support.kmock_cluster import wait_for
from support.quickstart_run import kubetune
from support.served_model import SERVED_NAME, serve_spec

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parents[1] / "fixtures" / "toolcalls"
MAX_RANK = 8
BASE = "bundled:smollm2-135m"
# The shortest training that moves the weights: the top two layers, two steps, few eval rows.
TRAIN = ["--max-steps", "2", "--batch-size", "2", "--grad-accum", "1", "--max-seq-length", "384", "--save-steps",
         "1000", "--lora-top-layers", "2", "--precision", "fp32", "--no-load-in-4bit"]
PROMPTS = ["What is the weather in Paris?", "Book a table for two at eight.", "Say something about rivers."]


def small_data(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name, rows in (("train.jsonl", 16), ("eval.jsonl", 2)):
        lines = (DATA / name).read_text().splitlines()[:rows]
        (dest / name).write_text("\n".join(lines) + "\n")
    return dest


def train(out: Path, data: Path, rank: int, learning_rate: str, model: str = BASE) -> None:
    assert cli.main(["train", "--model", model, "--data", str(data), "--output", str(out), "--lora-r", str(rank),
                     "--lora-alpha", str(2 * rank), "--learning-rate", learning_rate, *TRAIN]) == 0


def wanted(name: str, directory: Path, digest_of: Path | None = None) -> Wanted:
    marker = ((digest_of or directory) / COMPLETE_MARKER).read_bytes()
    return Wanted(name=name, uri=str(directory), digest=marker_digest(marker))


def write_set(path: Path, adapters: list[Wanted]) -> None:
    path.write_text(json.dumps(AdapterSet(base=SERVED_NAME, max_rank=MAX_RANK, adapters=adapters).dump()))


def server_argv(model_dir: Path, port: int) -> list[str]:
    """The operator's argv for a ModelServe with spec.adapters (LoRA on, no adapter named at start)."""
    from kubetune_jobs.serving.template import CHAT_TEMPLATE_FILE
    from kubetune_operator.modelserve import api, vllm

    spec = serve_spec()
    spec = spec.model_copy(update={
        "adapters": [api.AdapterSpec(name="any", uri="s3://bucket/any")],
        "model": spec.model.model_copy(update={"lora": api.LoraServing(max_rank=MAX_RANK, max_loras=2)})})
    files = vllm.ModelFiles(model=str(model_dir), chat_template=str(model_dir / CHAT_TEMPLATE_FILE))
    return vllm.argv(spec, SERVED_NAME, files, host="127.0.0.1", port=port)


def answers(server: VLLMServer, model: str) -> list[str] | int:
    """Greedy replies to PROMPTS under `model`, or the HTTP status of a refusal."""
    import openai

    client = openai.OpenAI(base_url=server.base_url, api_key="unused", timeout=120)
    out = []
    for prompt in PROMPTS:
        try:
            reply = client.chat.completions.create(model=model, max_tokens=12, temperature=0,
                                                   messages=[{"role": "user", "content": prompt}])
        except openai.APIStatusError as exc:
            return exc.status_code
        out.append(reply.choices[0].message.content or "")
    return out


def state(path: Path) -> ReplicaAdapters | None:
    return read(ReplicaAdapters, path.read_bytes()) if path.exists() else None


def placed(cache: Path) -> list[str]:
    """The adapter directories the agent keeps on the replica's disk."""
    return sorted(p.name for p in cache.iterdir() if not p.name.startswith("."))


def listed(server: VLLMServer) -> dict[str, str]:
    try:
        return RuntimeLora(server.root_url, timeout=10).served(SERVED_NAME)
    except Exception:  # noqa: BLE001 - not up yet
        return {}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Stage directories (adapter/, merged/) of three adapters on the bundled model, and one trained on
    weather's merged model."""
    tmp = tmp_path_factory.mktemp("trained")
    data = small_data(tmp / "data")
    out = {name: tmp / name for name in ("weather", "chat", "big", "on-weather")}
    train(out["weather"], data, 8, "3e-2")
    train(out["chat"], data, 4, "1e-1")
    train(out["big"], data, 16, "3e-2")
    train(out["on-weather"], data, 8, "3e-2", model=str(out["weather"] / MERGED_DIR))
    return out


@pytest.fixture(scope="module")
def scenario(servable_smollm2: Path, trained: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("adapters")
    weather, chat, big = (trained[n] / ADAPTER_DIR for n in ("weather", "chat", "big"))
    tampered = tmp / "tampered"
    shutil.copytree(weather, tampered)
    weights = tampered / "adapter_model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF  # same size, another sha256: only the digest check can tell
    weights.write_bytes(bytes(blob))
    corrupt = tmp / "corrupt"  # complete and consistent, but no weights vLLM can read
    shutil.copytree(weather, corrupt)
    (corrupt / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    (corrupt / COMPLETE_MARKER).unlink()
    storage.location(corrupt).upload_dir(corrupt)  # marked again, as a publish would
    the_set = tmp / "adapters.json"
    write_set(the_set, [wanted("weather", weather), wanted("chat", chat), wanted("big", big),
                        wanted("tampered", tampered), wanted("stale", chat, digest_of=weather),
                        wanted("corrupt", corrupt)])
    states = tmp / "states"
    port = free_port()
    env = {contract.RUNTIME_UPDATES_ENV: "True"}
    seen: dict[str, Any] = {}
    agent = None
    server = VLLMServer(server_argv(servable_smollm2, port), env={**os.environ, **env},
                        log_path=tmp / "server-1.log").start()
    try:
        seen["base"] = answers(server, SERVED_NAME)
        agent = subprocess.Popen(
            [sys.executable, "-m", "kubetune_jobs.cli", "adapters", "--endpoint", server.root_url, "--set",
             str(the_set), "--cache", str(tmp / "cache"), "--output", str(states), "--replica", "replica-0",
             "--interval-seconds", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for(lambda: state(states / "replica-0.json"), timeout=300, interval=0.5, what="the agent's first pass")
        seen["first"] = state(states / "replica-0.json")
        seen["listed"] = listed(server)
        for name in ("weather", "chat", "big", "tampered", "stale", "corrupt"):
            seen[name] = answers(server, name)
        try:  # vLLM itself, asked directly, refuses the high-rank adapter as the agent said it would
            RuntimeLora(server.root_url).load("big-direct", str(big))
            seen["direct"] = None
        except Refused as exc:
            seen["direct"] = str(exc)

        # A replica's vLLM restarts. The agent is held while it does, to see what vLLM alone comes back with.
        agent.send_signal(signal.SIGSTOP)
        server.stop()
        server = VLLMServer(server_argv(servable_smollm2, port), env={**os.environ, **env},
                            log_path=tmp / "server-2.log").start()
        seen["after_restart_at_start"] = listed(server)
        agent.send_signal(signal.SIGCONT)
        wait_for(lambda: {"weather", "chat"} <= set(listed(server)), timeout=120, interval=1, what="the set on the new server")
        seen["after_restart"] = listed(server)
        seen["weather_after_restart"] = answers(server, "weather")

        # A set that cannot be read is not an empty one: nothing is unloaded.
        the_set.write_text('{"base": "smollm2", "adapters": [')
        time.sleep(6)  # three passes
        seen["unreadable_set"] = listed(server)
        write_set(the_set, [wanted("chat", chat)])
        wait_for(lambda: "weather" not in listed(server), timeout=120, interval=1, what="weather unloaded")
        seen["shrunk"] = listed(server)
        # Its files leave the replica's disk; only the adapters still served stay placed.
        wait_for(lambda: all(n.startswith("chat-") for n in placed(tmp / "cache")), timeout=60, interval=0.5,
                 what="the unloaded adapter's files removed")
        seen["placed"] = placed(tmp / "cache")
        seen["weather_gone"] = answers(server, "weather")
        seen["chat_after"] = answers(server, "chat")
        seen["base_after"] = answers(server, SERVED_NAME)
        agent.send_signal(signal.SIGTERM)
        seen["agent_rc"] = agent.wait(timeout=60)
        seen["agent_out"] = agent.stdout.read() if agent.stdout else ""
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
        server.stop()
    return seen


def test_each_adapter_answers_under_its_name_and_is_applied(scenario: dict[str, Any]) -> None:
    first: ReplicaAdapters = scenario["first"]
    states = {a.name: a for a in first.adapters}
    assert states["weather"].state == states["chat"].state == LOADED, first
    assert set(scenario["listed"]) == {"weather", "chat"}, scenario["listed"]
    base, weather, chat = scenario["base"], scenario["weather"], scenario["chat"]
    assert isinstance(weather, list) and isinstance(chat, list) and isinstance(base, list)
    # Greedy and seeded: an adapter vLLM ignored would answer exactly as the base does.
    assert weather != base and chat != base and weather != chat, (base, weather, chat)


def test_a_bad_adapter_fails_alone_with_its_reason(scenario: dict[str, Any]) -> None:
    states = {a.name: a for a in scenario["first"].adapters}
    assert states["big"].state == FAILED and f"rank 16 exceeds the server's --max-lora-rank {MAX_RANK}" in (
        states["big"].reason or ""), states["big"]
    assert states["tampered"].state == FAILED and "does not match its _COMPLETE entry" in (
        states["tampered"].reason or ""), states["tampered"]
    assert states["stale"].state == FAILED and "not the ones the set names" in (states["stale"].reason or ""), (
        states["stale"])
    # Past every check, refused by vLLM itself: its own message, and the server still serves the rest.
    # (vLLM 0.32 answers 500: its worker failed to read the weights, and the server went on serving.)
    assert states["corrupt"].state == FAILED and (states["corrupt"].reason or "").startswith(
        "the server refused it: HTTP ") and "deserializing" in (states["corrupt"].reason or ""), states["corrupt"]
    assert scenario["big"] == scenario["tampered"] == scenario["stale"] == scenario["corrupt"] == 404
    assert scenario["direct"] is not None and "rank" in scenario["direct"].lower(), scenario["direct"]
    # Each failure is reported on the agent's one line per change.
    assert "failed: big (rank 16" in scenario["agent_out"], scenario["agent_out"]


def test_a_restarted_server_gets_the_set_back(scenario: dict[str, Any]) -> None:
    assert scenario["after_restart_at_start"] == {}  # vLLM alone forgets runtime adapters (vllm#12174)
    assert set(scenario["after_restart"]) == {"weather", "chat"}
    assert scenario["weather_after_restart"] == scenario["weather"]


def test_an_adapter_the_set_drops_is_unloaded_and_the_rest_answer(scenario: dict[str, Any]) -> None:
    assert set(scenario["unreadable_set"]) == {"weather", "chat"}, scenario["unreadable_set"]
    assert "is not an adapter set (nothing changed" in scenario["agent_out"], scenario["agent_out"]
    assert set(scenario["shrunk"]) == {"chat"} and scenario["weather_gone"] == 404
    assert len(scenario["placed"]) == 1, scenario["placed"]
    assert scenario["chat_after"] == scenario["chat"] and scenario["base_after"] == scenario["base"]
    assert scenario["agent_rc"] == 0 and "unloaded: weather" in scenario["agent_out"], scenario["agent_out"]


# ---------------------------------------------------------------- `kubetune serve` with spec.adapters

def summary(store: Path, run: str, base: str, stage_dir: Path) -> None:
    """What `kubetune run` leaves in its store for a finished one-stage run: the FineTuneRun with its status."""
    layout = RunLayout.of(str(store), "default", run)
    body = {"apiVersion": "kubetune.io/v1alpha1", "kind": "FineTuneRun", "metadata": {"name": run, "namespace": "default"},
            "spec": {"baseModel": base, "stages": [{"name": "tools"}]},
            "status": {"phase": "Succeeded", "artifacts": {
                "finalModel": str(stage_dir / MERGED_DIR), "models": {"tools": str(stage_dir / MERGED_DIR)},
                "adapters": {"tools": str(stage_dir / ADAPTER_DIR)}}}}
    Path(layout.summary).parent.mkdir(parents=True, exist_ok=True)
    Path(layout.summary).write_text(json.dumps(body))


@pytest.fixture(scope="module")
def served_locally(trained: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import yaml

    tmp = tmp_path_factory.mktemp("local-serve")
    store = tmp / "store"
    summary(store, "weather", BASE, trained["weather"])
    summary(store, "on-weather", str(trained["weather"] / MERGED_DIR), trained["on-weather"])
    summary(store, "big", BASE, trained["big"])
    manifest = tmp / "serve.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "kubetune.io/v1alpha1", "kind": "ModelServe", "metadata": {"name": "weather", "namespace": "default"},
        "spec": {"model": {"fineTuneRun": {"name": "weather"}, "lora": {"maxRank": MAX_RANK}},
                 "servedModelName": "weather", "resources": {"gpus": 0},
                 "vllm": {"dtype": "float32", "maxModelLen": 2048, "extraArgs": ["--enforce-eager", "--seed", "0"]},
                 "adapters": [{"name": "tuned", "fineTuneRun": {"name": "on-weather"}},
                              {"name": "big", "fineTuneRun": {"name": "big"}}]}}))
    proc = kubetune("serve", str(manifest), "--store", str(store), "--port", str(free_port()))
    out, seen = "", {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            out += line
            if line.strip().startswith("serving at "):
                seen["endpoint"] = line.split()[2]
            if "adapters on local:" in line:
                break
        if "endpoint" in seen:
            import openai

            client = openai.OpenAI(base_url=seen["endpoint"], api_key="unused", timeout=120)
            seen["models"] = sorted(m.id for m in client.models.list().data)
            reply = client.chat.completions.create(model="tuned", max_tokens=8, temperature=0,
                                                   messages=[{"role": "user", "content": PROMPTS[0]}])
            seen["tuned"] = reply.choices[0].message.content
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
        out += rest
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    seen.update(out=out, rc=proc.returncode)
    return seen


def test_kubetune_serve_serves_the_adapters_trained_on_its_model_and_refuses_another_base(
        served_locally: dict[str, Any]) -> None:
    out = " ".join(served_locally["out"].split())
    assert served_locally["models"] == ["tuned", "weather"], out
    assert isinstance(served_locally["tuned"], str)
    assert "adapter big: spec.adapters[1]: FineTuneRun 'big' stage 'tools' trained on bundled:smollm2-135m" in out
    assert "adapters on local: 1/1 loaded (tuned)" in out
    assert served_locally["rc"] == 0 and "Traceback" not in out
