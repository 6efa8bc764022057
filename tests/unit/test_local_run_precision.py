"""`kubetune run` says what training and generation computed in and why, read from the steps' own
records (progress.json, report.json): once each, again only when it changes, nothing for an endpoint."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from kubetune_jobs.contract import records
from kubetune_local import run as local

QUICKSTART = Path(__file__).parent.parent.parent / "manifests" / "examples" / "quickstart.yaml"
TRAIN_REASON = "auto: probe of a LoRA training step on this CPU took 100 ms in bf16, 150 ms in fp32"
GEN_REASON = "auto: probe of batched generation on this CPU took 900 ms in bf16, 1000 ms in fp32"


def _write(uri: str, record: dict) -> None:
    Path(uri).parent.mkdir(parents=True, exist_ok=True)
    Path(uri).write_text(json.dumps(record))


def test_precision_lines_once_per_kind_and_again_on_a_change(tmp_path: Path) -> None:
    out = io.StringIO()
    run = local.LocalRun(local.load(QUICKSTART), tmp_path, Console(file=out, width=60))
    trains = [s for s in run.steps if s.kind == "train"]
    evals = [s for s in run.steps if s.kind == "evaluate"]
    assert len(trains) >= 2 and len(evals) >= 3
    for step in trains:
        _write(step.record, records.Progress(precision="bf16", precision_reason=TRAIN_REASON).dump())
    _write(evals[0].record, {"precision": "fp32", "precision_reason": GEN_REASON})
    _write(evals[1].record, {"precision": None, "precision_reason": None})  # answered by an endpoint
    _write(evals[2].record, {"precision": "bf16", "precision_reason": "requested"})
    for step in run.steps:
        run._say_precision(step)
    lines = out.getvalue().splitlines()
    # Whole lines even at 60 columns: a log file reads them as a terminal does.
    # Plan order: eval-base, train-chat, eval-chat, train-tools, eval-tools.
    assert lines == [f"  generation in fp32: {GEN_REASON}", f"  training in bf16: {TRAIN_REASON}",
                     "  generation in bf16: requested"]


def test_no_record_yet_says_nothing(tmp_path: Path) -> None:
    out = io.StringIO()
    run = local.LocalRun(local.load(QUICKSTART), tmp_path, Console(file=out))
    for step in run.steps:
        run._say_precision(step)
    assert out.getvalue() == ""
