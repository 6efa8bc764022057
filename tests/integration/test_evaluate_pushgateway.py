"""Metrics reach a real Pushgateway, and an unreachable endpoint fails cleanly."""

from __future__ import annotations

import json
import urllib.request

from kubetune_jobs.cli import main
from kubetune_jobs.contract import metrics
from kubetune_jobs.evaluate import checker, suites
from kubetune_jobs.serving.process import free_port


def test_eval_gauges_pushed_and_read_back(tmp_path, pushgateway):
    items = suites.load("seed-tools")
    rows = [{"id": it.id, "tool_calls": checker.example_calls(it.ground_truth, it.functions)} for it in items]
    rows[0] = {"id": items[0].id, "text": "no idea"}  # one miss, so accuracy is not trivially 1
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    rc = main(["evaluate", "--suite", "seed-tools", "--predictions", str(tmp_path / "p.jsonl"), "--output",
               str(tmp_path / "o"), "--pushgateway", pushgateway, "--run-name", "demo", "--model-label", "stage-1"])
    assert rc == 0
    text = urllib.request.urlopen(f"{pushgateway}/metrics", timeout=5).read().decode()
    name = metrics.EVAL_ACCURACY.name
    line = next(ln for ln in text.splitlines() if ln.startswith(name + "{") and 'category="all"' in ln)
    assert 'run="demo"' in line and 'model="stage-1"' in line and 'suite="seed-tools"' in line
    assert float(line.rsplit(" ", 1)[1]) == (len(items) - 1) / len(items)
    assert any(ln.startswith(metrics.EVAL_FALSE_CALL.name + "{") and 'category="no_call"' in ln
               for ln in text.splitlines())
    assert any(ln.startswith(metrics.EVAL_COMPLETE.name + "{") and ln.endswith(" 1") for ln in text.splitlines())


def test_unreachable_endpoint_fails_without_report(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    rc = main(["evaluate", "--suite", "seed-tools", "--limit", "2", "--endpoint", url, "--model", "m",
               "--retries", "1", "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1 and "cannot reach endpoint" in err and url in err
    assert not (tmp_path / "o" / "report.json").exists()
