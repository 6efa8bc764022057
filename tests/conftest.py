"""Shared fixtures: real services on loopback (S3 over HTTP via moto's server, a Prometheus Pushgateway,
vLLM's CPU build serving the bundled SmolLM2, a Prometheus scraping them and this process's operator
metrics) and the models they serve."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ALERT_RULES = ROOT / "charts" / "kubetune" / "alerts" / "kubetune.rules.yaml"

# `make test` runs the suite on pytest-xdist workers (`--dist loadscope` with the scheduler below). Each module
# is a work unit of its own (its module-scoped fixtures, a trained run or a cluster emulator, are set up once),
# except the modules that share the session's vLLM server, which are one unit (one server per session, not one
# per worker). Units are handed out in collection order; the longest go first, so no worker is left with a long
# tail. (xdist's own `loadgroup` marks do nothing under pytest 9: it renames node ids through an attribute
# pytest no longer reads.)
SHARED_VLLM_SERVER = "vllm-session"
GROUP_OF = {module: SHARED_VLLM_SERVER for module in (
    "test_bench_vllm", "test_evaluate_e2e", "test_observability", "test_probe_vllm", "test_vllm_serving")}
LONGEST_FIRST = ("test_local_run_gate", "test_local_run", SHARED_VLLM_SERVER, "test_local_lifecycle",
                 "test_train_distributed", "test_train_resume", "test_train_store_outage")


def work_unit(nodeid: str) -> str:
    """The unit of work a test belongs to: its module's name, or the shared vLLM server's group."""
    module = Path(nodeid.split("::", 1)[0]).stem
    return GROUP_OF.get(module, module)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), len(rank)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByWorkUnit(config, log)


def pytest_configure(config: pytest.Config) -> None:
    own_cpus()


def own_cpus() -> None:
    """Under xdist, each worker and every process it starts runs on CPUs of its own (this process's CPUs dealt
    out in turn; no pinning where there are fewer CPUs than workers). Each job sizes its torch threads from its
    affinity (`runtime.cpu_budget()`) and vLLM binds to it. Unpinned, both workers' trainings ran two OpenMP
    threads each over the same two cores, and every vLLM server bound itself to the first core (it keeps the
    last for its scheduler) whichever worker started it: the suite took 1,155 s against 910 s pinned, the same
    evening (BENCHMARKS.md, "The test suite")."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not worker or not count or not hasattr(os, "sched_setaffinity"):
        return
    cpus, workers, index = sorted(os.sched_getaffinity(0)), int(count), int(worker.removeprefix("gw"))
    if len(cpus) >= workers and index < workers:
        os.sched_setaffinity(0, cpus[index::workers])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def padded(record: dict[str, Any], size: int) -> bytes:
    """`record` as JSON, valid and whole, made `size` bytes long by a key no record names: what a store could
    hold where a record is read (over a cap, it must not be parsed at all)."""
    text = json.dumps({**record, "padding": ""})
    return text.replace('"padding": ""', '"padding": "' + "x" * (size - len(text)) + '"').encode()


S3_ENV = {
    "AWS_ACCESS_KEY_ID": "kubetune-test",
    "AWS_SECRET_ACCESS_KEY": "kubetune-test-secret",
    "KUBETUNE_S3_RETRIES": "3",
    "KUBETUNE_S3_RETRY_DELAY": "0.1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API over HTTP on loopback (moto's server): the MinIO SDK talks to it like to MinIO."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_server(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the S3 endpoint, with the environment set for our storage layer and for
    subprocesses; returns the bucket's URI (`s3://<bucket>`)."""
    import uuid

    from minio import Minio

    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KUBETUNE_S3_ENDPOINT", s3_endpoint)
    bucket = f"kt-{uuid.uuid4().hex[:12]}"
    Minio(s3_endpoint.split("://", 1)[1], access_key=S3_ENV["AWS_ACCESS_KEY_ID"],
          secret_key=S3_ENV["AWS_SECRET_ACCESS_KEY"], secure=False).make_bucket(bucket)
    return f"s3://{bucket}"


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's prometheus-pushgateway on a free loopback port; returns its base URL."""
    binary = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"
    if not os.path.exists(binary):
        pytest.fail("prometheus-pushgateway is not installed (make test installs it)")
    port = free_port()
    log = open(tmp_path_factory.mktemp("pushgateway") / "log", "wb")  # noqa: SIM115
    # No persistence file: Debian's default (/var/lib/prometheus/pushgateway.data) is shared by every gateway
    # started on the machine, so groups pushed by one session would reappear in the next.
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
                            stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/-/ready", proc=proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A randomly initialised, tiny Qwen2-architecture model saved with the SmolLM2 tokenizer (whose
    vocabulary it matches); returns its directory. For testing mechanics, not what a model learns."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from kubetune_jobs.models import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve("bundled:smollm2-135m"))
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    dest = tmp_path_factory.mktemp("tiny-qwen2")
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return str(dest)


@pytest.fixture(scope="session")
def servable_smollm2() -> Path:
    """The bundled SmolLM2-135M made servable with our template (support.served_model says why its path
    is fixed)."""
    from support.served_model import servable_smollm2 as make

    return make()


@pytest.fixture(scope="session")
def vllm_server(servable_smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Real vLLM (CPU build, from `make vllm-env`) serving the bundled SmolLM2 with our template and the
    hermes tool parser, started once per test session."""
    from kubetune_jobs.serving.process import ServerError
    from kubetune_jobs.serving.vllm_server import VLLMServer, vllm_python
    from support.served_model import smollm2_argv

    try:
        python = vllm_python()
    except ServerError as exc:
        pytest.fail(str(exc))
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    with VLLMServer(smollm2_argv(servable_smollm2), python=python, log_path=log) as server:
        yield server


class Prometheus:
    """A running Prometheus: its HTTP API, and where it scrapes what."""

    def __init__(self, url: str, operator_port: int, targets: dict[str, str]) -> None:
        self.url, self.operator_port, self.targets = url, operator_port, targets

    def api(self, path: str, **params: Any) -> Any:
        """`data` of an /api/v1 answer; a PromQL error raises with Prometheus' own message."""
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}") from None
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's series (vector results; a scalar comes back as one unlabelled series)."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def label_values(self, label: str, match: str) -> list[str]:
        return self.api(f"label/{label}/values", **{"match[]": match})

    def alerts(self) -> list[dict[str, Any]]:
        return self.api("alerts")["alerts"]


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory, pushgateway: str, vllm_server) -> Iterator[Prometheus]:
    """Debian's Prometheus on a free loopback port, scraping every half second: the Pushgateway (honor_labels,
    as the chart's ServiceMonitor), the vLLM session server (with the labels the operator's PodMonitor gives a
    ModelServe's pods: namespace default, serve `assistant`) and this process's default prometheus_client
    registry, where an in-process operator (support.kmock_cluster.OperatorThread) keeps its metrics (as the
    chart's ServiceMonitor: honor_labels, target namespace `kubetune`). It evaluates the chart's alert rules."""
    from prometheus_client import start_http_server

    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not os.path.exists(binary):
        pytest.fail("prometheus is not installed (make test installs it)")
    work = tmp_path_factory.mktemp("prometheus")
    operator_port = free_port()
    metrics_server, metrics_thread = start_http_server(operator_port, addr="127.0.0.1")
    targets = {"pushgateway": pushgateway.split("://", 1)[1], "vllm": vllm_server.root_url.split("://", 1)[1],
               "kubetune-operator": f"127.0.0.1:{operator_port}"}
    config = {
        "global": {"scrape_interval": "500ms", "scrape_timeout": "400ms", "evaluation_interval": "500ms"},
        "rule_files": [str(ALERT_RULES)],
        "scrape_configs": [
            {"job_name": "pushgateway", "honor_labels": True,
             "static_configs": [{"targets": [targets["pushgateway"]], "labels": {"namespace": "kubetune"}}]},
            {"job_name": "kubetune-operator", "honor_labels": True,
             "static_configs": [{"targets": [targets["kubetune-operator"]], "labels": {"namespace": "kubetune"}}]},
            {"job_name": "vllm", "static_configs": [{"targets": [targets["vllm"]], "labels": {
                "namespace": "default", "pod": "assistant-r1-0", "kubetune_io_serve": "assistant",
                "kubetune_io_revision": "r1"}}]},
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(work / "log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/-/ready", timeout=60, proc=proc)
        yield Prometheus(url, operator_port, targets)
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
        metrics_server.shutdown()
        metrics_thread.join(5)
