"""The checkpoint publisher against a store that is away (nothing listening on its port) and then comes
up (moto's S3 server on that port): saves never wait for the store, a newer save replaces a waiting
one, a publish that gives up is retried, and the store only ever holds complete checkpoints."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from conftest import free_port
from kubetune_jobs import storage
from kubetune_jobs.train.checkpoints import CheckpointStore, Publisher


def trainer_checkpoint(tmp: Path, step: int) -> Path:
    local = tmp / "trainer" / f"checkpoint-{step}"
    local.mkdir(parents=True)
    (local / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (local / "adapter_model.safetensors").write_bytes(bytes([step]) * 4096)
    return local


@pytest.fixture
def dead_store(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    """The test bucket (moto keeps buckets per process, not per server) behind a port nothing listens on yet."""
    port = free_port()
    monkeypatch.setenv("KUBETUNE_S3_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("KUBETUNE_S3_RETRIES")
    monkeypatch.setenv("KUBETUNE_S3_RETRY_DELAY", "0.05")
    return s3_server, port


def test_saves_go_on_while_the_store_is_away_and_the_newest_waiting_one_wins(
        dead_store: tuple[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from moto.server import ThreadedMotoServer

    root, port = dead_store
    monkeypatch.setenv("KUBETUNE_S3_RETRY_BUDGET", "120")
    store = CheckpointStore(storage.location(f"{root}/stage"), keep=5)
    publisher = Publisher(store, tmp_path / "staging")
    caplog.set_level("INFO")
    publisher.submit(trainer_checkpoint(tmp_path, 1), 1)  # returns at once although nothing can be uploaded
    deadline = time.monotonic() + 30
    while not re.search(r"checkpoints/step-1\S* failed .*; retrying", caplog.text):
        assert time.monotonic() < deadline, "the upload of step 1 never started"
        time.sleep(0.01)
    for step in (2, 3):
        publisher.submit(trainer_checkpoint(tmp_path, step), step)
    assert publisher.newly_published() is None
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        assert publisher.drain() == (3, store.root.child("step-3").uri)
        assert publisher.newly_published() == (3, store.root.child("step-3").uri)
        assert publisher.newly_published() is None  # reported once
        superseded = re.findall(r"checkpoint step (\d+) superseded by step (\d+)", caplog.text)
        published = store.complete_steps()
        # Step 1 was already being uploaded (retrying) when 2 and 3 came; 2 waited and was replaced by 3.
        assert superseded == [("2", "3")] and published == [1, 3]
        assert store.root.list() == ["step-1", "step-3"]
        back = store.download(3, tmp_path / "resume")
        assert json.loads((back / "trainer_state.json").read_text())["global_step"] == 3
        assert list((tmp_path / "staging").iterdir()) == []  # copies are dropped once published
    finally:
        publisher.close()
        server.stop()


def test_a_publish_that_gives_up_is_retried_and_never_reported_as_done(
        dead_store: tuple[str, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from moto.server import ThreadedMotoServer

    root, port = dead_store
    monkeypatch.setenv("KUBETUNE_S3_RETRY_BUDGET", "0.3")
    store = CheckpointStore(storage.location(f"{root}/stage"), keep=2)
    publisher = Publisher(store, tmp_path / "staging")
    publisher.submit(trainer_checkpoint(tmp_path, 1), 1)
    with pytest.raises(storage.StorageError, match="checkpoint step 1 could not be published"):
        publisher.drain()  # gave up, was tried once more at the end, gave up again
    assert "checkpoint step 1 could not be published" in caplog.text
    assert publisher.newly_published() is None

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        # The failed copy is kept until a newer save supersedes it, or a last try at the end succeeds.
        publisher.submit(trainer_checkpoint(tmp_path, 2), 2)
        assert publisher.drain() == (2, store.root.child("step-2").uri)
        assert store.complete_steps() == [2]
        assert store.root.list() == ["step-2"]  # step 1's half-upload (if any) pruned after step 2 landed
    finally:
        publisher.close()
        server.stop()
