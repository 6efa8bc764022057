"""`kubetune report`: the run's and the serve's page from their records, read as untrusted; its charts draw
every finite point and nothing else; the page opens in a real headless browser with no network request."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

from kubetune_jobs.contract import env as names
from kubetune_local import charts, report
from support.browser import browse

POINT = re.compile(r'class="point"')


def _points(svg: str) -> int:
    return len(POINT.findall(svg))


def test_line_chart_draws_every_finite_point_and_nothing_else() -> None:
    svg = charts.line_chart("loss", [charts.Series("train", [(0, 2.0), (1, 1.5), (2, math.nan), (3, 1.0)]),
                                     charts.Series("eval", [(0, 2.1), (3, math.inf), (3, 1.2)])],
                            x_label="step", y_label="loss")
    assert _points(svg) == 5 and 'data-points="5"' in svg
    assert "nan" not in svg.lower() and "inf" not in svg.lower()


def test_bar_chart_leaves_a_missing_value_out_instead_of_drawing_zero() -> None:
    svg = charts.bar_chart("acc", ["a", "b"], [("base", [0.0, None]), ("tuned", [0.5, math.nan])], y_label="acc")
    assert _points(svg) == 2
    assert 'data-y="0"' in svg and 'data-y="0.5"' in svg


def test_a_chart_with_nothing_to_draw_says_so() -> None:
    svg = charts.line_chart("loss", [charts.Series("train", [(0, math.nan)])], x_label="step", y_label="loss")
    assert _points(svg) == 0 and "nothing recorded" in svg


def test_labels_and_names_are_escaped() -> None:
    svg = charts.bar_chart("<script>", ["<b>"], [("a&b", [0.5])], y_label="<i>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg


# ---------------------------------------------------------------- a run's records

def _report(accuracy: float, passed: list[bool]) -> dict:
    items = [{"id": f"seed-{i}", "suite": "seed-tools", "category": "single", "question": f"What is {i}?",
              "expected": [{"name": "lookup", "arguments": {"n": i}}], "passed": ok, "scored": True,
              "calls": [{"name": "lookup", "arguments": {"n": i}}] if ok else [], "reason": "" if ok else "no call"}
             for i, ok in enumerate(passed)]
    suite = {"items": len(items), "scored": len(items), "passed": sum(passed), "accuracy": accuracy,
             "false_call_rate": 0.1, "missed_call_rate": 1 - accuracy,
             "categories": {"single": {"accuracy": accuracy}, "parallel": {"accuracy": accuracy / 2}}}
    return {"complete": True, "suites": {"seed-tools": suite}, "items": items}


def make_run(root: Path) -> Path:
    run = root / "default" / "demo"
    for stage, losses in (("chat", [2.0, 1.8, 1.7]), ("tools", [1.6, 1.1, 0.7, 0.5])):
        stage_dir = run / "stages" / stage
        stage_dir.mkdir(parents=True)
        points = [{"step": 0, "eval_loss": losses[0] + 0.1}] + [
            {"step": i + 1, "loss": v, "tokens_per_second": 100.0 + i, "learning_rate": 1e-4} for i, v in enumerate(losses)]
        points[-1]["eval_loss"] = losses[-1] + 0.05
        (stage_dir / "curve.json").write_text(json.dumps({"points": points}))
        (stage_dir / "progress.json").write_text(json.dumps({"state": "succeeded", "step": len(losses),
                                                             "total": len(losses), "tokens_per_second": 101.5,
                                                             "eval_loss_start": losses[0], "eval_loss": losses[-1]}))
    for label, acc, passed in (("base", 0.0, [False, False, False]), ("chat", 1 / 3, [True, False, False]),
                               ("tools", 2 / 3, [True, True, False])):
        (run / "eval" / label).mkdir(parents=True)
        (run / "eval" / label / "report.json").write_text(json.dumps(_report(acc, passed)))
    (run / "summary.json").write_text(json.dumps({
        "metadata": {"name": "demo"}, "spec": {"baseModel": "bundled:smollm2-135m",
                                               "stages": [{"name": "chat"}, {"name": "tools"}]},
        "reports": {label: str(run / "eval" / label / "report.json") for label in ("base", "chat", "tools")}}))
    return run


def test_the_run_page_has_scores_curves_examples_and_artifacts(tmp_path: Path) -> None:
    page = report.build(str(make_run(tmp_path)))
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    counts = [int(re.search(r'data-points="(\d+)"', s).group(1)) for s in svgs]
    assert all(c == _points(s) for c, s in zip(counts, svgs, strict=True))
    # accuracy (1 suite x 3 evaluations), two rates, categories (2 x 3); per stage: loss (train + eval) and tok/s
    assert counts == [3, 3, 3, 6, 3 + 2, 3, 4 + 2, 4]
    assert "What is 1?" in page and "0.0% (0/3)" in page and "66.7% (2/3)" in page
    assert "held-out loss 2.000 → 1.700" in page
    assert "Not shown" not in page


def test_untrusted_records_are_named_on_the_page_and_never_drawn(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    tools = json.loads((run / "eval" / "tools" / "report.json").read_text())
    tools["suites"]["seed-tools"]["accuracy"] = "NaN"  # a string: not a figure
    (run / "eval" / "tools" / "report.json").write_text(json.dumps(tools))
    (run / "eval" / "chat" / "report.json").write_text(json.dumps({"complete": True, "levels": []}))  # a bench
    (run / "stages" / "chat" / "curve.json").write_bytes(b" " * (report.MAX_RECORD_BYTES + 1))
    (run / "stages" / "tools" / "progress.json").write_text("{not json")
    page = report.build(str(run))
    assert "curve.json" in page.split("Not shown")[1]
    assert "progress.json" in page.split("Not shown")[1]
    assert "eval/chat/report.json is not an evaluation report" in page
    assert "No training curve was recorded for this stage." in page
    assert 'data-series="tools"' not in page.split("Accuracy per suite")[1].split("</svg>")[0]


def test_report_command_fails_in_one_line(tmp_path: Path) -> None:
    # no store endpoint in the environment: an s3:// target cannot be read
    env = {k: v for k, v in os.environ.items() if k not in (names.S3_ENDPOINT, names.S3_ENDPOINT_FALLBACK)}
    for target in (str(tmp_path / "missing"), str(tmp_path), "s3://bucket/default/run"):
        out = subprocess.run([sys.executable, "-m", "kubetune_local.cli", "report", target], capture_output=True,
                             text=True, env={**env, "COLUMNS": "300"})
        text = out.stdout + out.stderr
        assert out.returncode == 2 and "Traceback" not in text and len(text.strip().splitlines()) == 1, text


def test_report_command_writes_the_page_into_the_run(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    out = subprocess.run([sys.executable, "-m", "kubetune_local.cli", "report", str(run)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert (run / "report.html").read_text().startswith("<!doctype html>")
    assert str(run / "report.html") in out.stdout


def test_the_serve_page_shows_the_benchmark_against_concurrency(tmp_path: Path) -> None:
    serve = tmp_path / "default" / "serves" / "quickstart"
    for rev, tps in (("aaaa1111bbbb", [12.0, 50.0]), ("cccc2222dddd", [11.0, 47.0])):
        (serve / "bench" / rev).mkdir(parents=True)
        levels = [{"concurrency": c, "completed": 16, "failed": 0, "duration_s": 10.0, "request_throughput": 1.6,
                   "output_tokens": 1024, "output_throughput": t, "ttft_p95_s": 0.05 * c}
                  for c, t in zip((1, 8), tps, strict=True)]
        (serve / "bench" / rev / "bench.json").write_text(json.dumps({
            "complete": True, "endpoint": "http://x/v1", "model": "q", "max_tokens": 64, "levels": levels}))
    (serve / "eval" / "aaaa1111bbbb").mkdir(parents=True)
    (serve / "eval" / "aaaa1111bbbb" / "report.json").write_text(json.dumps(_report(0.5, [True, False])))
    (serve / "eval" / "aaaa1111bbbb" / "verdict.json").write_text(json.dumps({
        "decision": "Rejected", "message": "…", "rows": [
            {"criterion": "minAccuracy.seed-tools", "threshold": ">= 0.6", "candidate": "0.500", "serving": "–",
             "passed": False},
            {"criterion": "complete", "threshold": "true", "candidate": "true", "serving": "true", "passed": True}]}))
    page = report.build(str(serve))
    assert "Output tokens per second against concurrency" in page and 'data-points="4"' in page
    assert "Evaluations per revision" in page
    verdicts = page.split("Gate verdicts")[1]
    assert "aaaa1111bbbb: Rejected" in verdicts and "minAccuracy.seed-tools" in verdicts and "FAIL" in verdicts


def test_the_page_opens_in_a_browser_without_any_network_request(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    out = Path(report.write(str(run)))
    seen = browse(out, screenshot=tmp_path / "report.png")
    assert seen.requests == []
    assert "<svg" in seen.dom and _points(seen.dom) == sum(map(int, re.findall(r'data-points="(\d+)"', seen.dom)))
    assert seen.screenshot is not None and seen.screenshot.stat().st_size > 10_000
