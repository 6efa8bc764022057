"""The live probe against real vLLM (CPU build): the session server, serving the bundled SmolLM2 with our template
and the hermes parser, answers the probe's few-shot weather requests with calls that reach the client as
`tool_calls` (unparseable share 0); a server of the same model with a deliberately broken chat template (it teaches
`<function_call>` where the parser reads `<tool_call>`) answers with `finish_reason: stop` and the calls as text,
and the probe's unparseable share goes up, its alert expression true in a real Prometheus for that server only.

The bundled model has not learnt to call tools; three earlier turns of the same request, each answered with a call,
make it call (greedy, deterministic) as a tuned model would.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from conftest import ALERT_RULES, Prometheus
from kubetune_jobs import cli
from kubetune_jobs.contract import metrics as m
from kubetune_jobs.contract.layout import PROBE_FILE
from kubetune_jobs.serving.process import free_port
from kubetune_jobs.serving.template import CHAT_TEMPLATE_FILE
from kubetune_jobs.serving.vllm_server import VLLMServer, flag_value
from support.kmock_cluster import wait_for
from support.served_model import smollm2_argv

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
PROBE_SET = ROOT / "tests" / "fixtures" / "probe" / "few-shot-weather.jsonl"
NS = "probe-test"
UNPARSEABLE_ALERT = next(r for g in yaml.safe_load(ALERT_RULES.read_text())["groups"] for r in g["rules"]
                         if r["alert"] == "KubetuneToolCallsUnparseable")


def run_probe(server, out: Path, gateway: str, serve: str) -> dict:
    assert cli.main(["probe", "--endpoint", server.base_url, "--model", server.model, "--data", str(PROBE_SET),
                     "--rounds", "1", "--max-new-tokens", "48", "--output", str(out), "--pushgateway", gateway,
                     "--serve-name", serve, "--revision", "r1", "--namespace", NS]) == 0
    return json.loads((out / PROBE_FILE).read_text())


@pytest.fixture(scope="module")
def broken_server(servable_smollm2: Path, tmp_path_factory: pytest.TempPathFactory):
    """The same model and parser behind a chat template that teaches another call markup than hermes reads."""
    tmp = tmp_path_factory.mktemp("broken-template")
    broken = tmp / CHAT_TEMPLATE_FILE
    broken.write_text((servable_smollm2 / CHAT_TEMPLATE_FILE).read_text().replace("tool_call>", "function_call>"))
    argv = smollm2_argv(servable_smollm2)
    i = argv.index("--chat-template")
    argv[i + 1] = str(broken)
    argv[argv.index("--port") + 1] = str(free_port())
    with VLLMServer(argv, log_path=tmp / "server.log") as server:
        yield server


@pytest.fixture(scope="module")
def rounds(vllm_server, broken_server, pushgateway: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("probe")
    assert flag_value(vllm_server.argv, "--tool-call-parser") == flag_value(broken_server.argv, "--tool-call-parser")
    return {"right": run_probe(vllm_server, tmp / "right", pushgateway, "right-template"),
            "broken": run_probe(broken_server, tmp / "broken", pushgateway, "broken-template")}


def test_with_the_right_template_every_call_reaches_the_client_as_tool_calls(rounds: dict) -> None:
    health = rounds["right"]["health"]
    assert health["answered"] == health["items"] == 5
    assert health["unparseable"] == 0.0
    assert health["call"] >= 0.75 and health["accuracy"] >= 0.6, rounds["right"]["items"]


def test_with_a_broken_template_the_calls_come_back_as_text(rounds: dict) -> None:
    health = rounds["broken"]["health"]
    assert health["answered"] == health["items"] == 5  # every request answered, none failed: only the text shows it
    assert health["unparseable"] >= 0.75 and health["call"] <= 0.25, rounds["broken"]["items"]
    assert health["no_call"] == 0.0  # the no-call request got a call as text: not the answer it wanted either
    assert health["accuracy"] <= 0.25


def test_the_unparseable_alert_expression_holds_for_the_broken_server_only(prometheus: Prometheus, rounds: dict) -> None:
    def served(expr: str) -> dict[str, float]:
        return {s["metric"]["serve"]: float(s["value"][1]) for s in prometheus.query(expr)
                if s["metric"].get("namespace") == NS and math.isfinite(float(s["value"][1]))}

    wait_for(lambda: len(served(m.PROBE_UNPARSEABLE.name)) == 2, timeout=90, interval=0.5,
             what="Prometheus has both probes' figures")
    assert served(UNPARSEABLE_ALERT["expr"]) == {"broken-template": rounds["broken"]["health"]["unparseable"]}
