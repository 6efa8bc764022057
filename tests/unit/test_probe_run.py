"""`kubetune-job probe` when what it talks to is down: an endpoint that refuses connections is a round with every
request unanswered (accuracy 0, failed share 1, written to probe.json), a Pushgateway that refuses is a warning; the
command ends normally after its rounds, and SIGTERM ends it between rounds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from kubetune_jobs import cli
from kubetune_jobs.contract.layout import PROBE_FILE
from kubetune_jobs.contract.options import ProbeOptions
from kubetune_jobs.contract.records import ProbeHealth
from kubetune_jobs.probe.run import Exporter
from kubetune_jobs.serving.process import free_port

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "probe" / "few-shot-weather.jsonl"


def test_an_endpoint_that_is_down_is_a_round_of_unanswered_requests(tmp_path: Path, capsys) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    assert cli.main(["probe", "--endpoint", f"{dead}/v1", "--model", "m", "--data", str(FIXTURE), "--rounds", "2",
                     "--interval-seconds", "0.1", "--output", str(tmp_path), "--pushgateway", dead]) == 0
    health = json.loads((tmp_path / PROBE_FILE).read_text())["health"]
    assert (health["items"], health["answered"], health["accuracy"], health["failed"]) == (5, 0, 0.0, 1.0)
    assert health["unparseable"] is None and health["call"] is None  # nothing answered: nothing measured
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("probe m:")]
    assert len(lines) == 2 and "unanswered 5/5 (request failed: APIConnectionError" in lines[0]


def test_a_gateway_that_refuses_costs_a_warning_not_the_probe() -> None:
    exporter = Exporter(ProbeOptions(endpoint="http://e/v1", model="m", data=str(FIXTURE),
                                     pushgateway=f"http://127.0.0.1:{free_port()}"))
    health = ProbeHealth(items=1, answered=1, accuracy=1.0, failed=0.0, unparseable=0.0, schema_violation=None, call=1.0, no_call=None,
                    latency_p50_s=0.1, latency_p95_s=0.1)
    assert exporter.export(health) is False


def _groups(gateway: str) -> list[dict]:
    with urllib.request.urlopen(f"{gateway}/api/v1/metrics", timeout=10) as resp:
        return [g["labels"] for g in json.loads(resp.read())["data"] if g["labels"].get("serve") == "sigterm"]


def test_sigterm_ends_the_probe_between_rounds_and_deletes_its_pushed_figures(tmp_path: Path, pushgateway: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    proc = subprocess.Popen([sys.executable, "-m", "kubetune_jobs.cli", "probe", "--endpoint", dead, "--model", "m",
                             "--data", str(FIXTURE), "--interval-seconds", "3600", "--output", str(tmp_path),
                             "--pushgateway", pushgateway, "--serve-name", "sigterm", "--revision", "r1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / PROBE_FILE).exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert (tmp_path / PROBE_FILE).exists(), proc.communicate(timeout=10)[0]
    deadline = time.monotonic() + 30
    while not _groups(pushgateway) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [g["revision"] for g in _groups(pushgateway)] == ["r1"]
    os.kill(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in out, out
    assert _groups(pushgateway) == [], "a revision no longer probed keeps no figures"


def test_a_conversation_with_earlier_calls_goes_out_as_the_chat_api_takes_it() -> None:
    from kubetune_jobs.evaluate.targets import openai_messages

    rows = [{"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
                "name": "get_weather", "arguments": {"location": "Oslo"}}}]},
            {"role": "tool", "content": "{\"temp_c\": 3}"},
            {"role": "user", "content": "And Rome?"}]
    wire = openai_messages(rows)
    call = wire[1]["tool_calls"][0]
    assert call["function"]["arguments"] == '{"location": "Oslo"}' and call["id"] and call["type"] == "function"
    assert wire[2]["tool_call_id"] == call["id"]
    assert rows[1]["tool_calls"][0]["function"]["arguments"] == {"location": "Oslo"}  # the item is left alone
