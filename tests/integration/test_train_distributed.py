"""Data-parallel training for real on this CPU: `torchrun` with the gloo backend, started by the same
builder the Job and `kubetune run` use (`contract.launch`), on the tiny Qwen2 and the fixture data.

Tolerance: two ranks and one process with the same global batch sum the same per-token losses in another
order (gloo's all-reduce against in-place accumulation), so losses and gradient norms agree to float32
rounding, far inside the relative 1e-3 asserted here; a rank that trained alone (no gradient all-reduce)
or a step that covered other rows misses it by orders of magnitude more (checked in this file's history:
an evaluate() before train() once left the model unwrapped and the gradient norm 8% off).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from kubetune_jobs import storage
from kubetune_jobs.contract.launch import TORCHRUN_MODULE, Launch, shutdown_env
from kubetune_jobs.train.checkpoints import CheckpointStore

DATA = Path(__file__).parent.parent / "fixtures" / "toolcalls"
STEPS = 6
REL = 1e-3


def train_args(model: str, output: Path, grad_accum: int, steps: int = STEPS) -> list[str]:
    return ["train", "--model", model, "--data", str(DATA), "--output", str(output), "--batch-size", "2",
            "--grad-accum", str(grad_accum), "--max-seq-length", "384", "--lora-r", "4", "--precision", "fp32",
            "--no-load-in-4bit", "--max-steps", str(steps), "--save-steps", "2", "--learning-rate", "5e-3",
            "--warmup-ratio", "0", "--keep-checkpoints", "4", "--no-merge"]


def command(args: list[str], ranks: int) -> list[str]:
    if ranks == 1:
        return [sys.executable, "-m", "kubetune_jobs.cli", *args]
    return [sys.executable, "-m", TORCHRUN_MODULE, *Launch(nproc_per_node=ranks).torchrun_args(), *args]


def env() -> dict[str, str]:
    # One thread per rank: two ranks on two cores, and the same per-rank arithmetic as one process gets.
    return {**os.environ, "OMP_NUM_THREADS": "1", **shutdown_env(150)}


def run(args: list[str], ranks: int, log: Path) -> subprocess.CompletedProcess:
    with open(log, "wb") as out:
        done = subprocess.run(command(args, ranks), stdout=out, stderr=subprocess.STDOUT, env=env(), timeout=600)
    return done


def history(output: Path) -> list[tuple[int, float, float]]:
    """(step, loss, grad norm) of every step, from the newest checkpoint's trainer state."""
    newest = max(output.glob("checkpoints/step-*"), key=lambda p: int(p.name.split("-")[1]))
    state = json.loads((newest / "trainer_state.json").read_text())
    return [(h["step"], h["loss"], h["grad_norm"]) for h in state["log_history"] if "loss" in h]


def progress(output: Path) -> dict:
    try:
        return json.loads((output / "progress.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def assert_same_training(got: list, want: list) -> None:
    assert [s for s, _, _ in got] == [s for s, _, _ in want] == list(range(1, STEPS + 1))
    assert want[-1][1] < want[0][1]  # it learns: the comparison is of a moving trajectory
    for (step, loss, norm), (_, want_loss, want_norm) in zip(got, want, strict=True):
        assert loss == pytest.approx(want_loss, rel=REL), f"loss at step {step}"
        assert norm == pytest.approx(want_norm, rel=REL), f"gradient norm at step {step}"


@pytest.fixture(scope="module")
def one_process(tiny_qwen2: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: one process, batch 2 x accumulation 2 = global batch 4."""
    out = tmp_path_factory.mktemp("one") / "stage"
    done = run(train_args(tiny_qwen2, out, 2), 1, out.parent / "log")
    assert done.returncode == 0, (out.parent / "log").read_text()[-3000:]
    return out


def test_two_ranks_train_like_one_process_and_rank_0_alone_publishes(one_process: Path, tiny_qwen2: str,
                                                                     tmp_path: Path) -> None:
    out = tmp_path / "stage"
    done = run(train_args(tiny_qwen2, out, 1), 2, tmp_path / "log")  # batch 2 x accumulation 1 x 2 ranks
    log = (tmp_path / "log").read_text()
    assert done.returncode == 0, log[-3000:]
    assert_same_training(history(out), history(one_process))
    p, ref = progress(out), progress(one_process)
    assert (p["world_size"], p["batch_size"], p["grad_accum"], p["effective_batch"], p["distribution"]) == \
        (2, 2, 1, 4, "ddp")
    assert (ref["world_size"], ref["grad_accum"], ref["effective_batch"]) == (1, 2, 4)
    assert p["state"] == "succeeded" and p["eval_loss_start"] == pytest.approx(ref["eval_loss_start"], rel=REL)
    # Every rank ran with a store that refuses writes unless it is rank 0; the run succeeded, so rank 1 wrote
    # nothing. The checkpoints record the batch plan they were trained with.
    assert "rank 1 of 2" in log and "only rank 0 writes" not in log
    recorded = CheckpointStore(storage.location(out), keep=4).recorded(STEPS)
    assert recorded["global_batch"] == 4 and recorded["world_size"] == 2
    assert (out / "adapter" / "_COMPLETE").exists()


def _worker(launcher: psutil.Process, rank: int) -> psutil.Process:
    for child in launcher.children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank):
                return child
        except psutil.Error:
            continue
    raise LookupError(f"no worker with RANK={rank}")


def _wait(predicate, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"torchrun exited with {proc.returncode} before the awaited state")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out")
        time.sleep(0.1)


def test_killed_rank_then_preemption_then_one_rank_resume_keep_the_same_training(
        one_process: Path, tiny_qwen2: str, tmp_path: Path) -> None:
    out = tmp_path / "stage"
    ckpts = CheckpointStore(storage.location(out), keep=4)
    args = train_args(tiny_qwen2, out, 1)

    # 1. Two ranks; rank 1 is killed once a checkpoint is in the store: the group fails.
    with open(tmp_path / "1.log", "wb") as log:
        first = subprocess.Popen(command(args, 2), stdout=log, stderr=subprocess.STDOUT, env=env())
        _wait(lambda: ckpts.latest() is not None, first)
        _worker(psutil.Process(first.pid), 1).kill()
        first.wait(200)
    assert first.returncode != 0
    killed_at = ckpts.latest()
    assert killed_at is not None and killed_at < STEPS

    # 2. Two ranks again: both resume from that checkpoint; SIGTERM to torchrun (a preempted pod) stops both
    # ranks after the same step, with a checkpoint.
    with open(tmp_path / "2.log", "wb") as log:
        second = subprocess.Popen(command(args, 2), stdout=log, stderr=subprocess.STDOUT, env=env())
        _wait(lambda: progress(out).get("state") == "running" and progress(out).get("step", 0) > killed_at, second)
        second.send_signal(signal.SIGTERM)
        second.wait(300)
    text = (tmp_path / "2.log").read_text()
    assert f"resuming from checkpoint step {killed_at}" in text
    p = progress(out)
    assert p["state"] == "preempted", text[-3000:]
    stopped_at = p["step"]
    assert killed_at < stopped_at < STEPS and ckpts.latest() == stopped_at

    # 3. One rank resumes the two-rank checkpoint: it keeps the global batch (accumulation 2, not 1).
    done = run(args, 1, tmp_path / "3.log")
    text = (tmp_path / "3.log").read_text()
    assert done.returncode == 0, text[-3000:]
    assert f"resumed at step {stopped_at} of {STEPS}" in text
    p = progress(out)
    assert (p["state"], p["world_size"], p["grad_accum"], p["effective_batch"]) == ("succeeded", 1, 2, 4)
    assert_same_training(history(out), history(one_process))


def test_fsdp_two_ranks_train_like_one_process_and_export_the_whole_adapter(one_process: Path, tiny_qwen2: str,
                                                                           tmp_path: Path) -> None:
    """--distribution fsdp shards the weights across the ranks (gloo on CPU): the same steps, and rank 0
    publishes an adapter gathered from the shards (every tensor whole, equal to the Trainer's checkpoint)."""
    from safetensors.torch import load_file

    out = tmp_path / "stage"
    args = [*train_args(tiny_qwen2, out, 1, steps=2), "--distribution", "fsdp"]
    done = run(args, 2, tmp_path / "log")
    assert done.returncode == 0, (tmp_path / "log").read_text()[-3000:]
    got, want = history(out), history(one_process)[:2]
    for (step, loss, norm), (_, want_loss, want_norm) in zip(got, want, strict=True):
        assert loss == pytest.approx(want_loss, rel=REL) and norm == pytest.approx(want_norm, rel=REL), step
    assert progress(out)["distribution"] == "fsdp" and progress(out)["state"] == "succeeded"
    adapter = load_file(out / "adapter" / "adapter_model.safetensors")
    saved = load_file(out / "checkpoints" / "step-2" / "adapter_model.safetensors")
    assert adapter.keys() == saved.keys() and len(adapter) == 2 * 7 * 2  # A and B, 7 projections, 2 layers
    for name, tensor in saved.items():
        assert adapter[name].shape == tensor.shape and adapter[name].equal(tensor), name


def test_kubetune_run_starts_every_rank_of_the_manifest(tiny_qwen2: str, tmp_path: Path) -> None:
    """The local executor runs a manifest's train step (gpus: 2) as two torchrun ranks on this machine."""
    import shutil

    from rich.console import Console

    from kubetune_local.run import LocalRun
    from kubetune_operator.finetunerun import api

    run = api.parse_manifest({
        "apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": "ranks", "namespace": "default"},
        "spec": {"baseModel": tiny_qwen2, "resources": {"gpus": 2},
                 "stages": [{"name": "tools", "dataset": {"source": str(DATA), "format": "xlam"}}],
                 "lora": {"r": 4}, "evaluation": {"suites": []},
                 "training": {"maxSteps": 2, "maxSeqLength": 384, "batchSize": 2, "gradAccum": 1, "loadIn4bit": False,
                              "precision": "fp32", "saveSteps": 2}}})
    local = LocalRun(run, tmp_path / "store", Console(file=open(os.devnull, "w")))  # noqa: SIM115
    step = next(s for s in local.steps if s.kind == "train")
    assert step.launch.world_size == 2
    data = Path(local.layout.data("tools"))
    data.mkdir(parents=True)
    for name in ("train.jsonl", "eval.jsonl"):
        shutil.copy(DATA / name, data / name)
    local.logs.mkdir(parents=True, exist_ok=True)
    local._run_step(step, "train-tools")
    log = (local.logs / "train-tools.log").read_text()
    assert f"-m {TORCHRUN_MODULE} --nnodes 1 --nproc-per-node 2" in log and "rank 1 of 2" in log
    p = json.loads(Path(local.layout.progress("tools")).read_text())
    assert (p["state"], p["world_size"], p["effective_batch"]) == ("succeeded", 2, 4)
