"""`kubetune serve` and `kubetune run` read what a store holds as the operator does, through the contract's bounded
reader: an object over its kind's cap is refused unparsed and named, in a local directory as in S3 (moto); the
command ends with one line, never a traceback, and starts nothing."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from conftest import padded
from kubetune_jobs import storage
from kubetune_jobs.contract import records
from kubetune_jobs.contract.layout import (
    COMPLETE_MARKER,
    COMPLETE_MARKER_MAX_BYTES,
    SUMMARY_MAX_BYTES,
    RunLayout,
)
from kubetune_local import cli
from kubetune_local import run as local_run

QUICKSTART = Path(__file__).parent.parent.parent / "manifests" / "examples" / "quickstart.yaml"
NS = "default"


@pytest.fixture(autouse=True)
def jobs_log_handlers() -> Iterator[None]:
    """`kubetune` run in this process hangs its line printer on the jobs' logger (store_timeout): taken off
    after each test, or the next test in this process would see the jobs' warnings printed twice."""
    logger = logging.getLogger("kubetune_jobs")
    before = list(logger.handlers)
    yield
    logger.handlers[:] = before


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict:
    """Where the artifacts are: `root` (a directory or s3://bucket), `--store`, and the manifests' storage block."""
    if request.param == "s3":
        bucket = request.getfixturevalue("s3_server")
        endpoint = request.getfixturevalue("s3_endpoint")
        # The keys come from this shell's environment (the fixture's), the Secret's name is what a cluster reads.
        return {"root": bucket, "dir": tmp_path / "unused", "spec": {
            "endpoint": endpoint, "bucket": bucket.removeprefix("s3://"), "credentialsSecret": "store"}}
    return {"root": str(tmp_path / "store"), "dir": tmp_path / "store", "spec": None}


def write(uri: str, data: bytes, size: int | None = None) -> None:
    """`data` at `uri`; with `size`, a local file grown to `size` bytes without writing them (sparse)."""
    storage.location(uri).write_bytes(data)
    if size is not None:
        with open(uri, "r+b") as fh:
            fh.truncate(size)


def kubetune(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str]:
    monkeypatch.setenv("COLUMNS", "400")  # rich does not fold the messages looked for
    code = cli.main(list(argv))
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text, text
    return code, text


def serve_manifest(tmp_path: Path, store: dict) -> Path:
    spec = {"model": {"fineTuneRun": {"name": "ft"}}, "resources": {"gpus": 0}}
    if store["spec"]:
        spec["storage"] = store["spec"]
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "kubetune.io/v1alpha1", "kind": "ModelServe",
                                    "metadata": {"name": "srv", "namespace": NS}, "spec": spec}))
    return path


def run_summary(store: dict, model: str) -> dict:
    """What `kubetune run` leaves for `kubetune serve` (LocalRun.summary): a finished FineTuneRun."""
    return {"apiVersion": "kubetune.io/v1alpha1", "kind": "FineTuneRun", "metadata": {"name": "ft", "namespace": NS},
            "spec": {"baseModel": "bundled:smollm2-135m", "stages": [{"name": "tools"}]},
            "status": {"phase": "Succeeded", "artifacts": {"finalModel": model, "models": {"tools": model}}}}


def test_serve_refuses_a_run_summary_over_its_cap(store: dict, tmp_path: Path, capsys, monkeypatch) -> None:
    summary = RunLayout.of(store["root"], NS, "ft").summary
    size = SUMMARY_MAX_BYTES + 1
    write(summary, padded(run_summary(store, f"{store['root']}/m"), size))
    code, out = kubetune(capsys, monkeypatch, "serve", str(serve_manifest(tmp_path, store)), "--store", str(store["dir"]))
    assert code == 1
    assert f"the run's summary {summary} is unusable, too large ({size} bytes > {SUMMARY_MAX_BYTES})" in out


def test_serve_refuses_a_model_whose_marker_is_over_its_cap(store: dict, tmp_path: Path, capsys, monkeypatch) -> None:
    model = f"{store['root']}/ns/ft/stages/tools/merged"
    write(f"{model}/config.json", b"{}")
    size = COMPLETE_MARKER_MAX_BYTES + 1
    marker = json.dumps({"config.json": {"size": 2, "sha256": "0" * 64}}).encode()
    if store["spec"]:
        write(f"{model}/{COMPLETE_MARKER}", padded(json.loads(marker), size))
    else:
        write(f"{model}/{COMPLETE_MARKER}", marker, size)
    write(RunLayout.of(store["root"], NS, "ft").summary, json.dumps(run_summary(store, model)).encode())
    code, out = kubetune(capsys, monkeypatch, "serve", str(serve_manifest(tmp_path, store)), "--store", str(store["dir"]))
    assert code == 1
    assert f"{model} cannot be served: {model}/{COMPLETE_MARKER} is unusable, too large ({size} bytes > " \
           f"{COMPLETE_MARKER_MAX_BYTES})" in out


def test_gate_refuses_a_benchmark_over_its_cap_unread(tmp_path: Path, capsys, monkeypatch) -> None:
    """`kubetune gate` (and `kubetune serve --against`, through the same reader) with serving objectives: the
    candidate's bench.json is read no further than a BenchReport's cap; within it, the same figures pass."""
    gate = {"minAccuracy": {"seed-tools": 0.5}, "maxTTFTp95Ms": 500, "benchmarkConcurrency": 8}
    manifest = tmp_path / "serve.yaml"
    manifest.write_text(yaml.safe_dump({"apiVersion": "kubetune.io/v1alpha1", "kind": "ModelServe",
                                        "metadata": {"name": "assistant"}, "spec": {
                                            "model": {"uri": "s3://kubetune/models/tools"}, "promotion": {
                                                "enabled": True, "suites": [{"name": "seed-tools"}], "gate": gate}}}))
    candidate = tmp_path / "report.json"
    candidate.write_text(json.dumps({"complete": True, "suites": {"seed-tools": {"accuracy": 0.7}}}))
    bench = {"complete": True, "endpoint": "http://e/v1", "model": "m", "max_tokens": 64, "levels": [
        {"concurrency": 8, "completed": 16, "failed": 0, "duration_s": 1.0, "request_throughput": 16.0,
         "output_tokens": 1024, "output_throughput": 100.0, "ttft_p95_s": 0.2}]}
    fits, huge = tmp_path / "fits.json", tmp_path / "huge.json"
    fits.write_bytes(json.dumps(bench).encode())
    size = records.BenchReport.max_bytes + 1
    write(str(huge), json.dumps(bench).encode(), size)
    argv = ["gate", str(manifest), "--candidate", str(candidate)]
    code, out = kubetune(capsys, monkeypatch, *argv, "--candidate-bench", str(fits))
    assert code == 0, out
    code, out = kubetune(capsys, monkeypatch, *argv, "--candidate-bench", str(huge))
    assert code == 2
    assert f"{huge} is unusable, too large ({size} bytes > {records.BenchReport.max_bytes})" in " ".join(out.split())


def quickstart(store: dict, tmp_path: Path) -> Path:
    doc = yaml.safe_load(QUICKSTART.read_text())
    if store["spec"]:
        doc["spec"]["storage"] = store["spec"]
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_run_stops_at_stats_over_their_cap_naming_them(store: dict, tmp_path: Path, capsys, monkeypatch) -> None:
    """The first step's outputs are looked at before it runs: over the cap, the run stops there, naming the file
    (within the cap, they would have been taken for the step's outputs or not, and a step started)."""
    monkeypatch.setenv("KUBETUNE_CACHE", str(tmp_path / "cache"))  # where a run on S3 keeps its logs
    manifest = quickstart(store, tmp_path)
    run = local_run.LocalRun(local_run.load(manifest), store["dir"], Console(file=io.StringIO()))
    first = run.steps[0]
    assert first.kind == "prepare"
    for name in ("train.jsonl", "eval.jsonl"):
        write(f"{first.record.rsplit('/', 1)[0]}/{name}", b"{}\n")
    size = records.PrepareStats.max_bytes + 1
    write(first.record, padded({"content_hash": "abc", "files": {"train.jsonl": "x"},
                                "step_fingerprint": first.fingerprint}, size))
    code, out = kubetune(capsys, monkeypatch, "run", str(manifest), "--store", str(store["dir"]))
    assert code == 1
    assert f"{first.record} is unusable, too large ({size} bytes > {records.PrepareStats.max_bytes})" in out
    assert "done in" not in out and not list(Path(run.logs).glob("*.log"))


def test_run_shows_nothing_of_records_over_their_cap(store: dict, tmp_path: Path, monkeypatch) -> None:
    """The precision line and the comparison table read progress.json and report.json."""
    monkeypatch.setenv("KUBETUNE_CACHE", str(tmp_path / "cache"))
    out = io.StringIO()
    run = local_run.LocalRun(local_run.load(quickstart(store, tmp_path)), store["dir"], Console(file=out, width=400))
    train = next(s for s in run.steps if s.kind == "train")
    evaluate = next(s for s in run.steps if s.kind == "evaluate")
    write(train.record, padded({"precision": "bf16", "precision_reason": "requested", "step": 3, "total": 9},
                               records.Progress.max_bytes + 1))
    report = {"complete": True, "precision": "fp32", "precision_reason": "requested", "suites": {}}
    write(evaluate.record, padded(report, records.ReportSummary.max_bytes + 1))
    run._say_precision(train)
    run._say_precision(evaluate)
    assert out.getvalue() == ""
    table = run.compare_table()
    assert f"is unusable, too large ({records.ReportSummary.max_bytes + 1} bytes > " \
           f"{records.ReportSummary.max_bytes})" in table
