"""`kubetune-job bench` against a real vLLM CPU server: its counts agree with the server's own
counters, metrics reach a real Pushgateway, and failures (timeouts, a server killed mid-sweep, a bad
endpoint) are counted and reported, never dropped."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port
from kubetune_jobs.cli import main
from kubetune_jobs.contract import metrics
from kubetune_jobs.contract.layout import BENCH_FILE, BENCH_MARKDOWN
from kubetune_jobs.contract.records import BenchReport, read
from support.served_model import SERVED_NAME, smollm2_argv

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SERVED = SERVED_NAME
TOKENS = 16


# --- the servers -----------------------------------------------------------------------------------
# The session's shared vLLM (tests/conftest.py `vllm_server`) serves the sweeps; the kill test starts one
# of its own, since it kills it.

@pytest.fixture
def vllm(vllm_server):
    return vllm_server


@pytest.fixture
def vllm_to_kill(servable_smollm2, tmp_path: Path) -> Iterator:
    from kubetune_jobs.serving.vllm_server import VLLMServer

    server = VLLMServer(smollm2_argv(servable_smollm2), log_path=tmp_path / "vllm.log").start()
    server.kill = lambda: os.killpg(server._proc.pid, signal.SIGKILL)  # abruptly, as a crash would
    yield server
    server.stop()


# --- reading the server's counters independently of the code under test --------------------------

def scrape(url: str) -> dict[str, float]:
    """Sample name (+ finished_reason) -> value, summed over the other labels."""
    out: dict[str, float] = {}
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name + (f"/{s.labels['finished_reason']}" if "finished_reason" in s.labels else "")
            out[key] = out.get(key, 0.0) + s.value
    return out


def finished(counters: dict[str, float]) -> float:
    return sum(v for k, v in counters.items()
               if k.startswith("vllm:request_success_total/") and not k.endswith(("/abort", "/error")))


def wait_idle(server, timeout: float = 60) -> None:
    """Until the server runs and queues nothing (aborted requests can linger a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = scrape(server.metrics_url)
        if c.get("vllm:num_requests_running", 0) == 0 and c.get("vllm:num_requests_waiting", 0) == 0:
            return
        time.sleep(0.2)
    raise AssertionError("the server kept running requests")


def levels_written(out: Path) -> int:
    """How many levels the bench's bench.json holds so far (0 while it is absent or being written)."""
    try:
        return len(json.loads((out / BENCH_FILE).read_text())["levels"])
    except (OSError, ValueError, KeyError):
        return 0


def load(out: Path) -> BenchReport:
    report = read(BenchReport, (out / BENCH_FILE).read_text())
    assert report is not None, "bench.json is not a BenchReport"
    return report


def test_sweep_counts_agree_with_the_server(vllm, pushgateway, tmp_path):
    wait_idle(vllm)
    before = scrape(vllm.metrics_url)
    rc = main(["bench", "--endpoint", vllm.base_url, "--model", vllm.model, "--concurrency", "1,4",
               "--requests", "4", "--max-tokens", str(TOKENS), "--warmup", "1", "--output", str(tmp_path),
               "--pushgateway", pushgateway, "--serve-name", "demo", "--revision", "r1"])
    after = scrape(vllm.metrics_url)
    assert rc == 0
    report = load(tmp_path)
    assert report.complete and report.error is None and report.server == "vllm"
    assert [lv.concurrency for lv in report.levels] == [1, 4]
    for lv in report.levels:
        assert (lv.completed, lv.failed, lv.errors) == (4, 0, {})
        # ignore_eos: every request generates exactly --max-tokens, as the server's usage says.
        assert lv.output_tokens == 4 * TOKENS
        assert (lv.server_completed, lv.server_output_tokens) == (lv.completed, lv.output_tokens)
        assert lv.output_throughput == pytest.approx(lv.output_tokens / lv.duration_s)
        assert lv.total_token_throughput > lv.output_throughput  # the prompts count too
        for name in ("ttft", "tpot", "itl", "e2e"):
            p50, p95, p99 = (getattr(lv, f"{name}_{p}_s") for p in ("p50", "p95", "p99"))
            assert 0 < p50 <= p95 <= p99, name
        assert lv.ttft_p50_s < lv.e2e_p50_s
    assert report.warmup["requests"] == 1 and report.warmup["completed"] == 1
    # The whole run, warm-up included, read straight off the server by this test.
    sent = 1 + sum(lv.completed for lv in report.levels)
    assert finished(after) - finished(before) == sent
    generated = after["vllm:generation_tokens_total"] - before["vllm:generation_tokens_total"]
    assert generated == sent * TOKENS
    table = (tmp_path / BENCH_MARKDOWN).read_text()
    assert "RTX A6000" in table and "| 50 | 1.0x |" in table and "| 4 | 4 | 0 |" in table
    text = urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5).read().decode()
    line = next(ln for ln in text.splitlines()
                if ln.startswith(metrics.BENCH_OUTPUT_THROUGHPUT.name + "{") and 'concurrency="4"' in ln)
    assert 'serve="demo"' in line and 'revision="r1"' in line
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(report.levels[1].output_throughput)
    assert any(ln.startswith(metrics.BENCH_REQUESTS.name + "{") and 'outcome="completed"' in ln
               and 'concurrency="1"' in ln and float(ln.rsplit(" ", 1)[1]) == 4 for ln in text.splitlines())
    assert any(ln.startswith(metrics.BENCH_COMPLETE.name + "{") and ln.endswith(" 1") for ln in text.splitlines())


def test_timed_out_requests_are_counted_as_failed(vllm, tmp_path, capsys):
    rc = main(["bench", "--endpoint", vllm.base_url, "--model", vllm.model, "--concurrency", "2",
               "--requests", "2", "--max-tokens", "2000", "--warmup", "0", "--timeout", "1",
               "--output", str(tmp_path)])
    wait_idle(vllm)
    assert rc == 1 and "no request completed at concurrency 2" in capsys.readouterr().err
    report = load(tmp_path)
    level = report.levels[0]
    assert report.complete and (level.completed, level.failed) == (0, 2)
    assert level.errors == {"timed out after 1 s": 2}
    assert level.ttft_p50_s is None and level.output_tokens == 0


def test_pushgateway_down_is_a_warning_without_its_credentials(vllm, tmp_path, caplog, capsys):
    host = f"127.0.0.1:{free_port()}"
    rc = main(["bench", "--endpoint", vllm.base_url, "--model", vllm.model, "--concurrency", "1",
               "--requests", "1", "--max-tokens", "4", "--warmup", "0", "--output", str(tmp_path),
               "--pushgateway", f"http://pushuser:s3cr%2Fet@{host}"])
    assert rc == 0 and load(tmp_path).complete
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "could not push" in r.getMessage()]
    assert warnings and f"http://{host}" in warnings[0]
    printed = caplog.text + "".join(capsys.readouterr())
    assert "s3cr" not in printed and "pushuser" not in printed


def test_model_not_served_is_one_error(vllm, tmp_path, capsys):
    rc = main(["bench", "--endpoint", vllm.base_url, "--model", "no-such-model", "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1 and "'no-such-model' is not served" in err and SERVED in err
    assert not (tmp_path / BENCH_FILE).exists()


def test_unreachable_endpoint_is_one_error(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    rc = main(["bench", "--endpoint", url, "--model", "m", "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1 and f"cannot reach endpoint {url}" in err
    assert err.count("kubetune-job bench: error") == 1 and "Traceback" not in err
    assert not (tmp_path / BENCH_FILE).exists()


def test_server_killed_mid_sweep(vllm_to_kill, tmp_path):
    server, requests = vllm_to_kill, 8
    out_dir, log_path = tmp_path / "out", tmp_path / "bench.log"
    with open(log_path, "w") as log:
        bench = subprocess.Popen(
            [sys.executable, "-m", "kubetune_jobs.cli", "bench", "--endpoint", server.base_url, "--model",
             server.model, "--concurrency", "2,4", "--requests", str(requests), "--max-tokens", "32",
             "--warmup", "1", "--output", str(out_dir)], stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        # Kill once the bench has written its first level: the second is under way. The bench's own
        # record says so, not the server's counters, so the moment does not depend on how fast either is.
        deadline = time.monotonic() + 300
        while not levels_written(out_dir):
            assert bench.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.05)
        server.kill()
        bench.wait(timeout=300)
    finally:
        if bench.poll() is None:
            bench.kill()
    out = err = log_path.read_text()
    assert bench.returncode == 1, out + err
    assert "sweep incomplete" in err and "stopped answering" in err
    report = load(out_dir)
    assert not report.complete and "stopped answering during the concurrency 4 level" in report.error
    *before, last = report.levels
    assert all(lv.failed == 0 for lv in before)
    assert last.failed >= 1 and last.completed + last.failed == requests
    assert sum(last.errors.values()) == last.failed
    assert all(lv.completed + lv.failed == requests for lv in report.levels)
    assert json.loads((out_dir / BENCH_FILE).read_text())["complete"] is False


# --- a server's counters that are not finite numbers ------------------------------------------------
# No real vLLM emits +Inf or NaN on demand, so a loopback server passes the real server's /metrics on with one
# crafted sample appended (what a broken engine's counter, or a proxy in between, could send); the requests
# themselves go to the real vLLM.

@pytest.fixture
def crafted_metrics(vllm) -> Iterator:
    extra: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            real = urllib.request.urlopen(vllm.metrics_url, timeout=10).read()
            body = real + "".join(f"{line}\n" for line in extra).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics", extra
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("sample", ['vllm:generation_tokens_total{engine="7"} +Inf',
                                    'vllm:request_success_total{engine="7",finished_reason="stop"} NaN'])
def test_counters_that_are_not_finite_are_survived_and_noted(vllm, crafted_metrics, tmp_path, capsys, sample):
    url, extra = crafted_metrics
    extra.append(sample)
    rc = main(["bench", "--endpoint", vllm.base_url, "--model", vllm.model, "--concurrency", "1,2",
               "--requests", "2", "--max-tokens", "4", "--warmup", "0", "--metrics-url", url,
               "--output", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    report = load(tmp_path)
    assert report.complete and [lv.completed for lv in report.levels] == [2, 2]
    assert all(lv.server_completed is None and lv.server_output_tokens is None for lv in report.levels)
    assert len(report.notes) == 1 and "1 sample(s) of the server's counters are not finite" in report.notes[0]
    assert sample.split("{")[0] in report.notes[0] and "note: " in out


def test_sigterm_mid_sweep_writes_the_partial_bench_json_with_why(vllm, tmp_path):
    out_dir, log_path = tmp_path / "out", tmp_path / "bench.log"
    with open(log_path, "w") as log:
        bench = subprocess.Popen(
            [sys.executable, "-m", "kubetune_jobs.cli", "bench", "--endpoint", vllm.base_url, "--model", vllm.model,
             "--concurrency", "1,2", "--requests", "1", "--max-tokens", "256", "--warmup", "0",
             "--output", str(out_dir)], stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        # The first level written, the second under way (a 256-token answer takes seconds on a CPU).
        deadline = time.monotonic() + 300
        while not levels_written(out_dir):
            assert bench.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.05)
        bench.send_signal(signal.SIGTERM)
        bench.wait(timeout=120)
    finally:
        if bench.poll() is None:
            bench.kill()
    wait_idle(vllm)
    text = log_path.read_text()
    assert bench.returncode == 1, text
    assert "sweep incomplete: stopped by SIGTERM after 1 level(s)" in text and "Traceback" not in text
    report = load(out_dir)
    assert not report.complete and report.error == "stopped by SIGTERM after 1 level(s)"
    assert [lv.concurrency for lv in report.levels] == [1]
