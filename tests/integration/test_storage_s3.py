"""Storage against a real S3 API over HTTP (moto's server) through the MinIO SDK."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest

from conftest import free_port
from kubetune_jobs import cli, storage

FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_prepare_writes_to_and_reads_from_s3(s3_server: str, tmp_path: Path, caplog) -> None:
    src = storage.location(f"{s3_server}/sources/xlam.jsonl")
    src.write_bytes((FIXTURES / "xlam_sample.jsonl").read_bytes())
    out_uri = f"{s3_server}/default/run-1/data/tools"
    argv = ["prepare", "--format", "xlam", "--source", src.uri, "--output", out_uri, "--no-call-fraction", "0"]
    assert cli.main(argv) == 0
    out = storage.location(out_uri)
    assert out.list() == ["eval.jsonl", "stats.json", "train.jsonl"]
    stats = out.child("stats.json").read_json()
    assert stats["rows_out"] == 6
    assert storage.sha256_bytes(out.child("train.jsonl").read_bytes()) == stats["files"]["train.jsonl"]

    local = tmp_path / "local"
    assert cli.main(argv[:5] + ["--output", str(local), "--no-call-fraction", "0"]) == 0
    assert (local / "train.jsonl").read_bytes() == out.child("train.jsonl").read_bytes()

    caplog.set_level("INFO")
    assert cli.main(argv) == 0
    assert "nothing to do" in caplog.text


def test_directories_are_published_whole(s3_server: str, tmp_path: Path) -> None:
    src = tmp_path / "ckpt"
    (src / "sub").mkdir(parents=True)
    (src / "adapter.bin").write_bytes(b"\x00" * 1000)
    (src / "sub" / "state.json").write_text('{"step": 3}')
    dest = storage.location(f"{s3_server}/run/checkpoints/step-3")
    assert not dest.is_complete_dir()
    dest.upload_dir(src)
    assert dest.is_complete_dir()
    assert dest.list() == [storage.COMPLETE_MARKER, "adapter.bin", "sub"]
    back = dest.download_dir(tmp_path / "back")
    assert (back / "sub" / "state.json").read_text() == '{"step": 3}'

    partial = storage.location(f"{s3_server}/run/checkpoints/step-6")
    partial.child("adapter.bin").write_bytes(b"half")  # an upload cut off before its marker
    assert partial.exists() and not partial.is_complete_dir()
    with pytest.raises(FileNotFoundError):
        partial.download_dir(tmp_path / "nope")

    storage.location(f"{s3_server}/run").delete()
    assert not dest.exists() and storage.location(f"{s3_server}/run").list() == []


def test_unreachable_store_fails_before_any_work(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setenv("KUBETUNE_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("KUBETUNE_S3_RETRIES", "2")
    monkeypatch.setenv("KUBETUNE_S3_RETRY_DELAY", "0.05")
    code = cli.main(["prepare", "--format", "xlam", "--source", str(FIXTURES / "xlam_sample.jsonl"),
                     "--output", "s3://bucket/ns/run/data/tools", "--no-call-fraction", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "failed to reach bucket" in err and "after 2 attempts" in err


def test_a_short_outage_is_retried(s3_endpoint: str, s3_server: str, monkeypatch) -> None:
    """The store goes away and comes back on the same address while a write is retrying."""
    from moto.server import ThreadedMotoServer

    # A dedicated server for this test, so stopping it does not disturb the shared one.
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    monkeypatch.setenv("KUBETUNE_S3_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("KUBETUNE_S3_RETRIES", "8")
    monkeypatch.setenv("KUBETUNE_S3_RETRY_DELAY", "0.2")
    loc = storage.location(f"{s3_server}/outage/object.json")
    loc.write_json({"before": True})
    server.stop()

    def restart() -> None:
        time.sleep(0.8)
        restarted = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
        restarted.start()
        holder.append(restarted)

    holder: list = []
    thread = threading.Thread(target=restart)
    thread.start()
    try:
        loc.write_json({"after": True})  # fails while the server is down, then succeeds
        assert json.loads(loc.read_bytes()) == {"after": True}
    finally:
        thread.join()
        for s in holder:
            s.stop()


def test_transient_failures_are_retried_until_the_time_budget_is_spent(monkeypatch, caplog) -> None:
    monkeypatch.setenv("KUBETUNE_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("KUBETUNE_S3_RETRIES", raising=False)  # no attempt cap: the budget alone decides
    monkeypatch.setenv("KUBETUNE_S3_RETRY_BUDGET", "1")
    monkeypatch.setenv("KUBETUNE_S3_RETRY_DELAY", "0.05")
    with pytest.raises(storage.StorageError) as err:
        storage.location("s3://bucket/a/object.json").write_json({})
    attempts = int(re.search(r"after (\d+) attempts in \d+ s", str(err.value)).group(1))
    assert attempts >= 2 and "MaxRetryError" in str(err.value)
    assert caplog.text.count("retrying for up to") == 1  # one warning per operation, not one per attempt

    with storage.retry_budget(0), pytest.raises(storage.StorageError, match="after 1 attempts"):
        storage.location("s3://bucket/a/object.json").write_json({})


def test_refusals_are_not_retried(s3_server: str, monkeypatch, caplog) -> None:
    monkeypatch.delenv("KUBETUNE_S3_RETRIES")
    monkeypatch.setenv("KUBETUNE_S3_RETRY_BUDGET", "600")  # a retried refusal would hang the test
    with pytest.raises(storage.StorageError, match="NoSuchBucket"):
        storage.location("s3://no-such-bucket-here/x.json").read_bytes()
    with pytest.raises(FileNotFoundError):
        storage.location(f"{s3_server}/missing.json").read_bytes()
    assert "retrying" not in caplog.text


def test_the_first_reachability_check_has_a_short_budget(monkeypatch, capsys) -> None:
    monkeypatch.setenv("KUBETUNE_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("KUBETUNE_S3_RETRIES", raising=False)
    monkeypatch.setenv("KUBETUNE_S3_RETRY_BUDGET", "3600")  # what later operations get
    monkeypatch.setenv("KUBETUNE_S3_RETRY_DELAY", "0.05")
    monkeypatch.setattr(storage, "CHECK_RETRY_BUDGET_S", 0.5)
    with pytest.raises(storage.StorageError, match="failed to reach bucket of s3://bucket/ns/run") as err:
        storage.location("s3://bucket/ns/run").check()
    seconds = int(re.search(r"after \d+ attempts in (\d+) s", str(err.value)).group(1))
    assert seconds < 60  # gave up on the check's budget, not on the hour the environment allows
