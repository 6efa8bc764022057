"""The train job's progress record: the throughput it reports leaves out the first step's start-up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from kubetune_jobs import storage
from kubetune_jobs.contract import records
from kubetune_jobs.train import progress as progress_mod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("resumed_at", [0, 20])
def test_tokens_per_second_counts_from_the_end_of_the_first_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 resumed_at: int) -> None:
    clock = Clock()
    monkeypatch.setattr(progress_mod.time, "monotonic", clock)
    record = progress_mod.Progress(storage.location(tmp_path), None, "run", "stage")
    callback = progress_mod.make_callback(record)
    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), report_to="none", use_cpu=True)
    state, control = TrainerState(), TrainerControl()
    state.max_steps, state.global_step, state.num_input_tokens_seen = resumed_at + 4, resumed_at, 5000

    def step(seconds: float, tokens: int) -> dict:
        clock.now += seconds
        state.global_step += 1
        state.num_input_tokens_seen += tokens
        callback.on_step_end(args, state, control)
        callback.on_log(args, state, control, logs={"loss": 1.0})
        return json.loads((tmp_path / "progress.json").read_text())

    callback.on_train_begin(args, state, control)
    first = step(30.0, 600)  # start-up: CUDA context, kernel compilation
    assert first["tokens_per_second"] == pytest.approx(20.0)  # until a second step, the first step's own rate
    step(2.0, 400)
    last = step(2.0, 400)
    assert last["tokens_per_second"] == pytest.approx(200.0)  # 800 tokens in 4 s, not 1400 in 34 s
    assert last["eta_seconds"] == pytest.approx(2.0) and last["step"] == resumed_at + 3
    assert last["start_step"] == resumed_at


@pytest.mark.parametrize("loss", [float("nan"), float("inf")])
def test_a_diverged_loss_is_written_as_null_and_the_record_stays_readable(tmp_path: Path, loss: float) -> None:
    """JSON has no NaN nor infinity (a strict parser refuses the whole file): training that diverges writes
    null for the loss, and the record stays one every reader reads."""
    record = progress_mod.Progress(storage.location(tmp_path), None, "run", "stage")
    callback = progress_mod.make_callback(record)
    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), report_to="none", use_cpu=True)
    state, control = TrainerState(), TrainerControl()
    state.max_steps, state.global_step = 4, 1
    callback.on_log(args, state, control, logs={"loss": loss, "learning_rate": 1e-4})
    text = (tmp_path / "progress.json").read_text()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in progress.json"))
    read = records.read(records.Progress, text)
    assert read is not None and read.step == 1 and read.loss is None and read.learning_rate == 1e-4
