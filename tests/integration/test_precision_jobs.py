"""The train and evaluate jobs under `precision: auto`, on a tiny random Qwen2 model: each follows this
machine's probe verdict (given here, both outcomes) and says what it picked and why, once in its log,
in progress.json / report.json and in the train summary. Between them the two outcomes also run
both CPU training paths (bf16 autocast and fp32) through the job; the local end-to-end run
(test_local_run) trains the real model only in the precision auto picks."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from kubetune_jobs import cli, precision, runtime
from kubetune_jobs.precision import GENERATION, TRAINING, Timings

DATA = Path(__file__).parent.parent / "fixtures" / "toolcalls"
FAST = ["--no-load-in-4bit", "--max-steps", "3", "--batch-size", "2", "--grad-accum", "1", "--max-seq-length", "384",
        "--save-steps", "1000", "--lora-r", "4", "--lora-alpha", "8", "--learning-rate", "1e-2"]
VERDICTS = [(Timings(0.30, 0.15), "bf16"), (Timings(0.30, 0.52), "fp32")]
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="on CUDA auto does not probe")


@pytest.fixture
def probed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_qwen2: str):
    """Record `timings` as this machine's probe of `workload` (in a cache of the test's own, set after
    tiny_qwen2 has found the bundled tokenizer in the real one)."""
    monkeypatch.setenv("KUBETUNE_CACHE", str(tmp_path / "cache"))
    runtime.configure_threads()  # the jobs' thread count is part of the machine's key

    def record(workload: str, timings: Timings) -> None:
        precision.auto(workload, probe=lambda _: timings)

    return record


@pytest.mark.parametrize(("timings", "expected"), VERDICTS)
def test_train_auto_trains_in_the_probed_precision_and_says_why(timings: Timings, expected: str, probed,
                                                                tiny_qwen2: str, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture,
                                                                capsys: pytest.CaptureFixture) -> None:
    probed(TRAINING, timings)
    out = tmp_path / "stage"
    with caplog.at_level(logging.INFO):
        assert cli.main(["train", "--model", tiny_qwen2, "--data", str(DATA), "--output", str(out),
                         "--precision", "auto", *FAST]) == 0
    progress = json.loads((out / "progress.json").read_text())
    assert progress["state"] == "succeeded" and progress["precision"] == expected
    assert "probe of a LoRA training step" in progress["precision_reason"]
    assert "cached" in progress["precision_reason"]
    said = [r.getMessage() for r in caplog.records if progress["precision_reason"] in r.getMessage()]
    assert len(said) == 1 and f"precision {expected}" in said[0]
    assert f"precision    {expected} ({progress['precision_reason']})" in capsys.readouterr().out
    assert progress["eval_loss"] < progress["eval_loss_start"]
    # The merge on CPU is written in fp32 whatever the training precision, so nothing learnt is rounded away.
    assert json.loads((out / "merged" / "config.json").read_text())["dtype"] == "float32"


@pytest.mark.parametrize(("timings", "expected"), VERDICTS)
def test_evaluate_auto_generates_in_the_probed_precision_and_says_why(timings: Timings, expected: str, probed,
                                                                      tiny_qwen2: str, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    probed(GENERATION, timings)
    out = tmp_path / "report"
    with caplog.at_level(logging.INFO):
        assert cli.main(["evaluate", "--local-model", tiny_qwen2, "--suite", "seed-tools", "--limit", "2",
                         "--max-new-tokens", "4", "--output", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["precision"] == expected
    assert "probe of batched generation" in report["precision_reason"] and "cached" in report["precision_reason"]
    said = [r.getMessage() for r in caplog.records if report["precision_reason"] in r.getMessage()]
    assert len(said) == 1 and expected in said[0]
