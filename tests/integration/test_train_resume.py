"""Preemption and crashes: a killed run resumes from its newest complete checkpoint in the store
(a local directory or S3 over HTTP), and SIGTERM or Ctrl-C writes a checkpoint before exiting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kubetune_jobs import storage
from kubetune_jobs.train.checkpoints import EXIT_INTERRUPTED, EXIT_PREEMPTED, CheckpointStore

DATA = Path(__file__).parent.parent / "fixtures" / "toolcalls"
TOTAL = 12


def train_cmd(model: str, data: str, output: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "kubetune_jobs.cli", "train", "--model", model, "--data", data,
            "--output", output, "--batch-size", "2", "--grad-accum", "1", "--max-seq-length", "384",
            "--lora-r", "4", "--keep-checkpoints", "2", "--precision", "auto", "--no-load-in-4bit", *extra]


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            pytest.fail(f"training exited with {proc.returncode} before the awaited state")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("timed out waiting for the run")


def progress(out: storage.Location) -> dict:
    try:
        return json.loads(out.child("progress.json").read_bytes())
    except (FileNotFoundError, ValueError):
        return {}


def upload_data(root: str) -> str:
    data = storage.location(f"{root}/data/tools")
    for name in ("train.jsonl", "eval.jsonl"):
        data.child(name).write_bytes((DATA / name).read_bytes())
    return data.uri


@pytest.mark.parametrize("store", ["local", "s3"])
def test_sigkill_then_rerun_resumes_from_the_checkpoint(store: str, tiny_qwen2: str, tmp_path: Path,
                                                         request: pytest.FixtureRequest) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    if store == "s3":
        root = request.getfixturevalue("s3_server")
        data, out_uri = upload_data(root), f"{root}/ns/run/stages/tools"
    else:
        data, out_uri = str(DATA), str(tmp_path / "stage")
    out = storage.location(out_uri)
    ckpts = CheckpointStore(out, keep=2)
    cmd = train_cmd(tiny_qwen2, data, out_uri, "--max-steps", str(TOTAL), "--save-steps", "3")

    with open(tmp_path / "first.log", "wb") as log:
        first = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
        wait_for(lambda: ckpts.latest() is not None, first)
        first.kill()
        first.wait(30)
    assert first.returncode == -signal.SIGKILL
    first_eval_loss = progress(out).get("eval_loss_start")
    assert first_eval_loss is not None  # evaluated before its first step
    resumed_from = ckpts.latest()
    assert resumed_from is not None and 0 < resumed_from < TOTAL
    assert not out.child("adapter").exists()

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=os.environ.copy())
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-3000:]
    assert f"resuming from checkpoint step {resumed_from}" in log
    assert f"resumed at step {resumed_from} of {TOTAL}" in log
    p = progress(out)
    assert p["state"] == "succeeded" and p["start_step"] == resumed_from and p["step"] == p["total"] == TOTAL
    # The resumed run does not evaluate before training again: the first run's starting loss is kept.
    assert p["eval_loss_start"] == first_eval_loss
    assert len(ckpts.complete_steps()) <= 2 and ckpts.latest() == TOTAL
    assert p["checkpoint"] == out.child("checkpoints", f"step-{TOTAL}").uri  # in S3 too: the operator shows it

    adapter = out.child("adapter").download_dir(tmp_path / "adapter")
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_qwen2), adapter)
    assert any("lora_A" in name for name, _ in model.named_parameters())


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, EXIT_PREEMPTED), (signal.SIGINT, EXIT_INTERRUPTED)])
def test_sigterm_or_ctrl_c_writes_a_checkpoint_and_stops(sig: signal.Signals, code: int, tiny_qwen2: str,
                                                          tmp_path: Path) -> None:
    out = storage.location(tmp_path / "stage")
    ckpts = CheckpointStore(out, keep=2)
    cmd = train_cmd(tiny_qwen2, str(DATA), out.uri, "--max-steps", "200", "--save-steps", "1000")
    with open(tmp_path / "run.log", "wb") as log:
        # SIGINT's default disposition, as at a terminal (a background shell would hand it over ignored).
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        wait_for(lambda: progress(out).get("step", 0) >= 2, proc)
        proc.send_signal(sig)
        proc.wait(120)
    assert proc.returncode == code, (tmp_path / "run.log").read_text()[-3000:]
    p = progress(out)
    assert p["state"] == "preempted" and 2 <= p["step"] < 200
    # The checkpoint is the preemption's own (no --save-steps boundary was reached) and it is complete.
    assert ckpts.complete_steps() == [p["step"]]
    assert p["checkpoint"] == out.child("checkpoints", f"step-{p['step']}").uri
    assert not out.child("adapter").exists() and not out.child("merged").exists()
