"""The object store goes away for twenty seconds in the middle of training and comes back on the same
address: training goes on meanwhile, and no checkpoint, the adapter or the merged model is lost.

The store is moto's S3 server on loopback. Its buckets live in this test process, not in the server
thread, so a server stopped and started again on the same port still holds everything written before
the outage: the same as a MinIO pod restarting on its persistent volume. While it is stopped the port
refuses connections (checked below), which is what the training job sees of a store that is down.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import S3_ENV, free_port
from kubetune_jobs import storage
from kubetune_jobs.train.checkpoints import CheckpointStore

DATA = Path(__file__).parent.parent / "fixtures" / "toolcalls"
OUTAGE_S = 20  # some ten saves while uploads retry: enough for one to supersede another
TOTAL = 24  # at ~2 s a step here training outlasts the outage; faster hosts finish during it
KEEP = 3


def test_training_survives_a_store_outage(tiny_qwen2: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from minio import Minio
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, **S3_ENV, "KUBETUNE_S3_ENDPOINT": endpoint, "KUBETUNE_S3_RETRY_BUDGET": "300",
           "KUBETUNE_S3_RETRY_DELAY": "0.5"}
    env.pop("KUBETUNE_S3_RETRIES")  # the jobs' own setting: no attempt cap, only the time budget
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KUBETUNE_S3_RETRIES", raising=False)
    Minio(f"127.0.0.1:{port}", access_key=S3_ENV["AWS_ACCESS_KEY_ID"], secret_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
          secure=False).make_bucket("outage")
    data = storage.location("s3://outage/ns/run/data/tools")
    for name in ("train.jsonl", "eval.jsonl"):
        data.child(name).write_bytes((DATA / name).read_bytes())
    out = storage.location("s3://outage/ns/run/stages/tools")
    ckpts = CheckpointStore(out, keep=KEEP)

    cmd = [sys.executable, "-m", "kubetune_jobs.cli", "train", "--model", tiny_qwen2, "--data", data.uri,
           "--output", out.uri, "--batch-size", "2", "--grad-accum", "1", "--max-seq-length", "384",
           "--lora-r", "4", "--max-steps", str(TOTAL), "--save-steps", "1", "--keep-checkpoints", str(KEEP),
           "--no-load-in-4bit", "--precision", "auto"]
    log_path = tmp_path / "train.log"
    running = [server]
    proc: subprocess.Popen | None = None
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            deadline = time.monotonic() + 300
            while ckpts.latest() is None:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "no checkpoint within 300 s"
                time.sleep(0.2)

            running.pop().stop()
            with pytest.raises(storage.StorageError, match="failed to look up"), storage.retry_budget(0):
                out.exists()  # the store really is away
            down_until = time.monotonic() + OUTAGE_S
            while time.monotonic() < down_until:
                assert proc.poll() in (None, 0), log_path.read_text()[-3000:]
                time.sleep(0.5)
            running.append(ThreadedMotoServer(ip_address="127.0.0.1", port=port))
            running[0].start()
            proc.wait(timeout=600)
        text = log_path.read_text()
        assert proc.returncode == 0, text[-3000:]

        # The publisher's store calls failed during the outage and were retried (which call meets the outage
        # first, a listing of checkpoints/ or a read or write inside it, depends on timing), and training went
        # on meanwhile: saves came in while it was retrying, and the newest waiting one replaced the older.
        assert re.search(r"s3://outage/\S*/checkpoints\S* failed \(.*\); retrying for up to", text), text[-3000:]
        assert "succeeded at attempt" in text
        published = {int(n) for n in re.findall(r"checkpoint step (\d+) published", text)}
        superseded = {int(n) for n in re.findall(r"checkpoint step (\d+) superseded", text)}
        assert superseded, "no save arrived while an upload was retrying"
        # Nothing lost: every save was either published complete or replaced by a newer one that was.
        assert published | superseded == set(range(1, TOTAL + 1)) and not published & superseded
        assert "could not be published" not in text

        # Retention keeps the newest published steps, whichever they were: a host that finishes training
        # while the store is away publishes the last step alone after it (e.g. 1, 2, 24), a slower one
        # publishes the steps the outage did not cover (e.g. 22, 23, 24).
        newest = sorted(published)[-KEEP:]
        assert TOTAL in published and ckpts.complete_steps() == newest
        assert out.child("checkpoints").list() == [f"step-{s}" for s in newest]  # nothing half-written left
        for step in newest:
            back = out.child("checkpoints", f"step-{step}").download_dir(tmp_path / f"step-{step}")
            assert json.loads((back / "trainer_state.json").read_text())["global_step"] == step

        progress = json.loads(out.child("progress.json").read_bytes())
        assert progress["state"] == "succeeded" and progress["step"] == TOTAL
        assert progress["checkpoint"] == out.child("checkpoints", f"step-{TOTAL}").uri
        for name in ("adapter", "merged"):
            assert out.child(name).is_complete_dir()
        merged = out.child("merged").download_dir(tmp_path / "merged")  # every file checked against _COMPLETE
        assert json.loads((merged / "config.json").read_text())["model_type"] == "qwen2"
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(30)
        for running_server in running:
            running_server.stop()
