"""Several GPUs in one pod (CUDA hosts with at least two devices only): torchrun with one rank per GPU,
NCCL, for each backend and for FSDP; rank 0 publishes, the effective batch is reported, Unsloth either
trains data-parallel or the job says it fell back to TRL + PEFT.

Started with the same torchrun command line a Job uses (`contract.launch`). Skipped here (no CUDA), and on
a one-GPU host.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubetune_jobs.contract.launch import TORCHRUN_MODULE, Launch

torch = pytest.importorskip("torch")
GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(GPUS < 2, reason="needs two CUDA devices")]
DATA = Path(__file__).parent.parent / "fixtures" / "toolcalls"
MODEL = os.environ.get("KUBETUNE_GPU_TEST_MODEL", "bundled:smollm2-135m")


def torchrun(out: Path, *extra: str) -> subprocess.CompletedProcess:
    args = ["train", "--model", MODEL, "--data", str(DATA), "--output", str(out), "--max-steps", "4",
            "--batch-size", "2", "--grad-accum", "1", "--max-seq-length", "512", "--save-steps", "2", *extra]
    cmd = [sys.executable, "-m", TORCHRUN_MODULE, *Launch(nproc_per_node=2).torchrun_args(), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200)


@pytest.mark.parametrize(("backend", "extra"), [
    ("trl", ["--no-load-in-4bit"]), ("trl", ["--load-in-4bit"]), ("trl", ["--no-load-in-4bit", "--distribution", "fsdp"]),
    ("auto", ["--no-load-in-4bit"]), ("auto", ["--no-load-in-4bit", "--distribution", "fsdp"]),
], ids=["trl-ddp", "trl-qlora-ddp", "trl-fsdp", "auto-ddp", "auto-fsdp"])
def test_two_gpus_train_one_adapter(tmp_path: Path, backend: str, extra: list[str]) -> None:
    out = tmp_path / "stage"
    run = torchrun(out, "--backend", backend, *extra)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    p = json.loads((out / "progress.json").read_text())
    assert (p["state"], p["world_size"], p["effective_batch"]) == ("succeeded", 2, 4)
    assert (out / "adapter" / "_COMPLETE").exists() and (out / "merged" / "_COMPLETE").exists()
    if backend == "auto" and importlib.util.find_spec("unsloth") is not None:
        if "fsdp" in extra:
            assert "Unsloth does not support FSDP; training with TRL + PEFT" in log
        else:
            assert "backend unsloth" in log
