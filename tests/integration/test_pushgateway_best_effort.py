"""Metrics are best-effort: a Pushgateway that is down, a name that does not resolve or a URL that does
not parse costs one warning, never the evaluation or the training run; credentials in the URL reach a
real Pushgateway that demands them, and never the job's output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port
from kubetune_jobs import cli
from kubetune_jobs.contract import metrics
from kubetune_jobs.evaluate import checker, suites
from kubetune_jobs.train.metrics import STEP, MetricsPusher

USER, SECRET = "pusher", "kubetune-push-secret"
# bcrypt of SECRET (Python 3.11: crypt.crypt(SECRET, "$2b$05$abcdefghijklmnopqrstuu")); the gateway's
# web config holds only hashes.
SECRET_BCRYPT = "$2b$05$abcdefghijklmnopqrstuuQVFgF1fWyD67QuoDuSm6Gms9vukLa0C"
DATA = Path(__file__).parent.parent / "fixtures" / "toolcalls"
BEST_EFFORT = "metrics are best-effort"


def start_gateway(tmp: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"
    if not os.path.exists(binary):
        pytest.fail("prometheus-pushgateway is not installed (make test installs it)")
    port = free_port()
    log = open(tmp / f"gateway-{port}.log", "wb")  # noqa: SIM115 - closed with the process
    # No persistence file: Debian's default (/var/lib/prometheus/pushgateway.data) is shared by every gateway
    # started on the machine, so one test's groups would reappear in the next.
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file=", *extra],
                            stdout=log, stderr=log)
    proc.log = log  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=2)
            break
        except urllib.error.HTTPError:
            break  # it answers (401 without credentials)
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "pushgateway did not start"
            time.sleep(0.1)
    return proc, url


def stop_gateway(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(10)
    proc.log.close()  # type: ignore[attr-defined]


@pytest.fixture
def auth_gateway(tmp_path: Path) -> Iterator[str]:
    """A real Pushgateway that answers only to USER:SECRET (basic auth)."""
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  {USER}: {SECRET_BCRYPT}\n")
    proc, url = start_gateway(tmp_path, f"--web.config.file={config}")
    yield url
    stop_gateway(proc)


def scrape(url: str, auth: bool = False) -> str:
    request = urllib.request.Request(f"{url}/metrics")
    if auth:
        request.add_header("Authorization", "Basic " + b64encode(f"{USER}:{SECRET}".encode()).decode())
    return urllib.request.urlopen(request, timeout=5).read().decode()


def with_credentials(url: str, password: str = SECRET) -> str:
    return url.replace("http://", f"http://{USER}:{password}@")


def predictions(tmp_path: Path) -> Path:
    items = suites.load("seed-tools")
    rows = [{"id": it.id, "tool_calls": checker.example_calls(it.ground_truth, it.functions)} for it in items]
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def evaluate_argv(tmp_path: Path, gateway: str) -> list[str]:
    return ["evaluate", "--suite", "seed-tools", "--predictions", str(predictions(tmp_path)), "--output",
            str(tmp_path / "o"), "--pushgateway", gateway, "--run-name", "demo", "--model-label", "stage-1"]


def evaluate(tmp_path: Path, gateway: str) -> subprocess.CompletedProcess:
    """The evaluate job as the operator runs it: its own process, everything it prints captured."""
    cmd = [sys.executable, "-m", "kubetune_jobs.cli", *evaluate_argv(tmp_path, gateway)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("gateway", ["down", "unresolvable"])
def test_a_finished_evaluation_stands_when_metrics_cannot_be_pushed(gateway: str, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    if gateway == "down":
        proc, url = start_gateway(tmp_path)
        stop_gateway(proc)  # a real gateway's address, nothing listening any more
    else:
        url = "http://pushgateway.invalid:9091"  # .invalid never resolves (RFC 6761)
    assert cli.main(evaluate_argv(tmp_path, url)) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["complete"] and report["suites"]["seed-tools"]["accuracy"] == 1.0
    assert caplog.text.count(BEST_EFFORT) == 1 and url in caplog.text


def test_credentials_in_the_url_work_and_are_never_printed(tmp_path: Path, auth_gateway: str) -> None:
    done = evaluate(tmp_path, with_credentials(auth_gateway))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-2000:]
    assert BEST_EFFORT not in output
    name = metrics.EVAL_ACCURACY.name
    assert any(ln.startswith(name + "{") and 'model="stage-1"' in ln for ln in scrape(auth_gateway, auth=True).splitlines())

    wrong = evaluate(tmp_path, with_credentials(auth_gateway, password="wrong-" + SECRET))
    output += wrong.stdout + wrong.stderr
    assert wrong.returncode == 0
    assert wrong.stderr.count(BEST_EFFORT) == 1 and "401" in wrong.stderr and auth_gateway in wrong.stderr
    assert SECRET not in output and f"{USER}:" not in output


def test_training_metrics_carry_credentials_and_survive_a_dead_gateway(tmp_path: Path, auth_gateway: str,
                                                                       caplog: pytest.LogCaptureFixture,
                                                                       capsys: pytest.CaptureFixture) -> None:
    pusher = MetricsPusher(with_credentials(auth_gateway), "run-a", "tools")
    assert pusher.push({STEP: 7})
    assert f'{STEP}{{instance="",job="kubetune-train",run="run-a",stage="tools"}} 7' in scrape(auth_gateway, True)

    caplog.set_level("INFO")
    dead = MetricsPusher(with_credentials(f"http://127.0.0.1:{free_port()}"), "run-a", "tools")
    assert not dead.push({STEP: 1})
    assert not dead.push({STEP: 2}, force=False)  # right after a failure: skipped, not retried at every step
    assert not dead.push({STEP: 3})
    assert caplog.text.count(BEST_EFFORT) == 1
    assert SECRET not in caplog.text + "".join(capsys.readouterr())


def test_an_invalid_gateway_url_does_not_stop_training(tiny_qwen2: str, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture,
                                                       capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "stage"
    bad = f"http://{USER}:{SECRET}@127.0.0.1:not-a-port"  # urllib used to raise ValueError at the first push
    assert cli.main(["train", "--model", tiny_qwen2, "--data", str(DATA), "--output", str(out), "--max-steps", "2",
                     "--batch-size", "2", "--grad-accum", "1", "--max-seq-length", "384", "--save-steps", "2",
                     "--lora-r", "4", "--no-merge", "--no-load-in-4bit", "--precision", "auto", "--pushgateway", bad]) == 0
    assert json.loads((out / "progress.json").read_text())["state"] == "succeeded"
    assert caplog.text.count(BEST_EFFORT) == 1 and "not a usable Pushgateway URL" in caplog.text
    assert SECRET not in caplog.text + "".join(capsys.readouterr())
