"""What `kubetune run` records for `kubetune serve` (its summary): the stages' adapters and merged models, and
the last stage's adapter, not a merged model that was never made, when that stage publishes its adapter only."""

from __future__ import annotations

import io
from pathlib import Path

import yaml
from rich.console import Console

from kubetune_local import run as local

QUICKSTART = Path(__file__).parent.parent.parent / "manifests" / "examples" / "quickstart.yaml"


def _run(tmp_path: Path, last_stage_merges: bool) -> local.LocalRun:
    doc = yaml.safe_load(QUICKSTART.read_text())
    if not last_stage_merges:
        doc["spec"]["stages"][-1].setdefault("training", {})["merge"] = False
        doc["spec"]["evaluation"] = {"suites": []}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(doc))
    return local.LocalRun(local.load(path), tmp_path / "store", Console(file=io.StringIO()))


def test_the_summary_names_only_the_models_the_run_makes(tmp_path: Path) -> None:
    merged = _run(tmp_path, last_stage_merges=True)
    stages = [s.name for s in merged.run.spec.stages]
    arts = merged.summary()["status"]["artifacts"]
    assert arts["finalModel"] == merged.final_model() == merged.layout.merged(stages[-1])
    assert arts["models"] == {s: merged.layout.merged(s) for s in stages}

    adapter_only = _run(tmp_path, last_stage_merges=False)
    arts = adapter_only.summary()["status"]["artifacts"]
    assert "finalModel" not in arts and adapter_only.final_model() == adapter_only.layout.adapter(stages[-1])
    assert arts["models"] == {s: adapter_only.layout.merged(s) for s in stages[:-1]}
    assert arts["adapters"] == {s: adapter_only.layout.adapter(s) for s in stages}


def test_an_evaluation_step_shows_the_items_its_job_has_answered(tmp_path: Path) -> None:
    """The evaluate job's progress.json (beside its report) is what `kubetune run` shows for that step; a
    training step's is its stage's. Nothing written yet, or a record of another kind: nothing shown."""
    import json

    run = _run(tmp_path, last_stage_merges=True)
    steps = {s.name: s for s in run.steps}
    base = steps["eval-base"]
    assert run._done(base) is None
    where = Path(base.outputs[0]).parent / "progress.json"
    where.parent.mkdir(parents=True)
    where.write_text(json.dumps({"state": "running", "step": 12, "total": 20, "items_per_second": 0.16,
                                 "eta_seconds": 50.0}))
    done = run._done(base)
    assert (done.completed, done.total, done.unit, done.detail) == (12, 20, "items", "0.16 items/s, ETA 50s")
    where.write_text(json.dumps({"state": 3}))
    assert run._done(base) is None
