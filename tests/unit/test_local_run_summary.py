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
