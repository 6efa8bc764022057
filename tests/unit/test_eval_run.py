"""`kubetune-job evaluate` over offline predictions: reports, bad input, the compare table."""

from __future__ import annotations

import json
import pathlib

import pytest

from kubetune_jobs.cli import main
from kubetune_jobs.evaluate import checker, suites


def write_preds(path, items, *, skip=(), openai_style=False):
    with open(path, "w") as fh:
        for item in items:
            if item.id in skip:
                continue
            calls = checker.example_calls(item.ground_truth, item.functions)
            if openai_style:
                calls = [{"type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                         for c in calls]
            fh.write(json.dumps({"id": item.id, "tool_calls": calls}) + "\n")


def evaluate(*argv):
    return main(["evaluate", *argv])


def test_seed_tools_asset_is_consistent():
    items = suites.load("seed-tools")
    assert 30 <= len(items) <= 40
    assert {"multiple", "parallel_multiple", "no_call"} == {it.category for it in items}
    names = {t["function"]["name"] for t in suites.seed_tools()}
    assert names == {"get_weather", "search_web", "send_email", "get_stock_price", "translate_text", "calculate", "book_flight"}
    for item in items:
        calls = checker.example_calls(item.ground_truth, item.functions)
        assert checker.check(item.functions, calls, item.ground_truth, item.category).passed, item.id


def test_seed_tools_accept_documented_defaults():
    # A call that passes a parameter's documented default value is as right as one that omits it.
    import re

    documented = {}
    for tool in suites.seed_tools():
        for param, spec in tool["function"]["parameters"]["properties"].items():
            found = re.search(r"\(default (\w+)\)", spec.get("description", ""))
            if found:
                documented[(tool["function"]["name"], param)] = json.loads(found.group(1))
    assert documented, "the seed tools document some defaults"
    checked = 0
    for item in suites.load("seed-tools"):
        for call in item.ground_truth:
            for name, params in call.items():
                for param, accepted in params.items():
                    if (name, param) in documented and "" in accepted:
                        assert documented[name, param] in accepted, (item.id, name, param)
                        checked += 1
    assert checked


def test_ground_truth_predictions_score_perfectly(tmp_path, capsys):
    items = suites.load("seed-tools") + suites.load("bfcl-parallel", limit=20) + suites.load("bfcl-irrelevance", limit=5)
    write_preds(tmp_path / "p.jsonl", items, openai_style=True)
    rc = evaluate("--suite", "seed-tools", "--suite", "bfcl-parallel", "--suite", "bfcl-irrelevance", "--limit", "40",
                  "--predictions", str(tmp_path / "p.jsonl"), "--output", str(tmp_path / "out"))
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    # bfcl-parallel has 20 answers of 40 items and irrelevance 5 of 40: the rest are missing.
    assert rc == 1 and report["complete"] is False and report["unscored"] == 55
    assert "report incomplete" in capsys.readouterr().err
    seed = report["suites"]["seed-tools"]
    assert seed["accuracy"] == 1.0 and seed["false_call_rate"] == 0.0 and seed["missed_call_rate"] == 0.0
    assert seed["name_accuracy"] == 1.0 and seed["schema_violation_rate"] == 0.0
    assert report["suites"]["bfcl-parallel"]["accuracy"] == 0.5
    assert "INCOMPLETE" in (tmp_path / "out" / "report.md").read_text()
    for rec in report["items"]:
        assert {"id", "suite", "category", "passed", "reason"} <= set(rec)


def test_wrong_predictions_are_counted_per_rate(tmp_path):
    items = suites.load("seed-tools")
    rows = []
    for item in items:
        if item.category == "no_call":
            rows.append({"id": item.id, "tool_calls": [{"name": "get_weather", "arguments": {"location": "x"}}]})
        elif item.category == "multiple":
            rows.append({"id": item.id, "text": "<tool_call>{not json</tool_call>"})
        else:
            rows.append({"id": item.id, "text": "I cannot do that."})
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    rc = evaluate("--suite", "seed-tools", "--predictions", str(tmp_path / "p.jsonl"), "--output", str(tmp_path / "o"))
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rc == 0 and report["complete"]
    agg = report["suites"]["seed-tools"]
    assert agg["accuracy"] == 0.0 and agg["false_call_rate"] == 1.0 and agg["missed_call_rate"] == 1.0
    assert agg["categories"]["multiple"]["unparseable_rate"] == 1.0
    assert agg["categories"]["parallel_multiple"]["unparseable_rate"] == 0.0


def test_predictions_name_no_generation_precision(tmp_path):
    # Precision is that of a model this job ran; answers read from a file were made elsewhere.
    items = suites.load("seed-tools", limit=3)
    write_preds(tmp_path / "p.jsonl", items)
    assert evaluate("--suite", "seed-tools", "--limit", "3", "--predictions", str(tmp_path / "p.jsonl"),
                    "--output", str(tmp_path / "o")) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["precision"] is None and report["precision_reason"] is None


def test_schema_violation_is_reported(tmp_path):
    item = suites.load("seed-tools")[0]
    (tmp_path / "p.jsonl").write_text(json.dumps({"id": item.id, "tool_calls": [
        {"name": "get_weather", "arguments": {"location": "Paris", "unit": "kelvin"}}]}))
    evaluate("--suite", "seed-tools", "--limit", "1", "--predictions", str(tmp_path / "p.jsonl"), "--output", str(tmp_path / "o"))
    rec = json.loads((tmp_path / "o" / "report.json").read_text())["items"][0]
    assert rec["passed"] is False and rec["schema_violations"]


def test_unknown_suite_fails_clearly(tmp_path, capsys):
    rc = evaluate("--suite", "bfcl-nope", "--predictions", str(tmp_path / "p.jsonl"), "--output", str(tmp_path / "o"))
    err = capsys.readouterr().err
    assert rc == 1 and "unknown suite 'bfcl-nope'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_broken_predictions_json_fails_without_report(tmp_path, capsys):
    (tmp_path / "p.jsonl").write_text('{"id": "seed_tools_0", "tool_calls": []}\n{"id": oops\n')
    rc = evaluate("--suite", "seed-tools", "--predictions", str(tmp_path / "p.jsonl"), "--output", str(tmp_path / "o"))
    err = capsys.readouterr().err
    assert rc == 1 and "line 2: not valid JSON" in err
    assert not (tmp_path / "o" / "report.json").exists()


def test_missing_ids_give_incomplete_report_and_nonzero_exit(tmp_path, capsys):
    items = suites.load("seed-tools", limit=6)
    write_preds(tmp_path / "p.jsonl", items, skip={items[2].id})
    rc = evaluate("--suite", "seed-tools", "--limit", "6", "--predictions", str(tmp_path / "p.jsonl"), "--output", str(tmp_path / "o"))
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rc == 1 and report["complete"] is False and report["unscored"] == 1
    missing = next(r for r in report["items"] if r["id"] == items[2].id)
    assert missing["passed"] is False and "no prediction" in missing["reason"]
    assert report["suites"]["seed-tools"]["accuracy"] == pytest.approx(5 / 6)
    assert items[2].id in capsys.readouterr().err


def test_compare_table(tmp_path, capsys):
    items = suites.load("seed-tools")
    write_preds(tmp_path / "good.jsonl", items)
    (tmp_path / "bad.jsonl").write_text("\n".join(json.dumps({"id": it.id, "text": "hello"}) for it in items))
    for name in ("good", "bad"):
        evaluate("--suite", "seed-tools", "--predictions", str(tmp_path / f"{name}.jsonl"), "--output", str(tmp_path / name))
    capsys.readouterr()
    assert evaluate("--compare", str(tmp_path / "bad" / "report.json"), str(tmp_path / "good" / "report.json")) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| seed-tools | all | accuracy"))
    no_call = sum(it.category == "no_call" for it in items)
    assert row.split("|")[4].strip() == f"{no_call / len(items):.3f} ({no_call}/{len(items)})"
    assert row.split("|")[5].strip() == f"1.000 ({len(items)}/{len(items)})"
    assert "| bad | good |" in out


def test_heldout_rows_scored_by_exact_calls(tmp_path):
    tools = suites.seed_tools()
    rows = [
        {"kind": "call", "tools": tools, "messages": [{"role": "user", "content": "weather in Oslo"}, {
            "role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"location": "Oslo"}}}]}]},
        {"kind": "no_call", "tools": tools, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]},
        {"kind": "chat", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]},
    ]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "eval.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    preds = [{"id": "heldout_0", "tool_calls": [{"name": "get_weather", "arguments": {"location": "oslo"}}]},
             {"id": "heldout_1", "text": "Hi there"}]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(p) for p in preds))
    rc = evaluate("--suite", "heldout", "--data", str(tmp_path / "data"), "--predictions", str(tmp_path / "p.jsonl"),
                  "--output", str(tmp_path / "o"))
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rc == 0 and [r["passed"] for r in report["items"]] == [False, True]  # exact: "oslo" != "Oslo"


def test_each_suite_takes_its_own_item_count(tmp_path):
    items = suites.load("seed-tools") + suites.load("bfcl-irrelevance", limit=3)
    write_preds(tmp_path / "p.jsonl", items)
    rc = evaluate("--suite", "seed-tools", "--suite", "bfcl-irrelevance:3", "--predictions", str(tmp_path / "p.jsonl"),
                  "--output", str(tmp_path / "out"))
    assert rc == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["suites"]["seed-tools"]["items"] == len(suites.load("seed-tools"))
    assert report["suites"]["bfcl-irrelevance"]["items"] == 3
    assert suites.validate(["seed-tools:2", "heldout"], 7) == {"seed-tools": 2, "heldout": 7}
    for bad in ("seed-tools:0", "seed-tools:x", "nope:3"):
        with pytest.raises(suites.SuiteError):
            suites.validate([bad])


def test_output_cut_off_by_the_token_limit_is_named_in_the_reason():
    from kubetune_jobs.evaluate.report import score_item
    from kubetune_jobs.evaluate.targets import from_text

    item = suites.load("seed-tools")[0]
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Par'
    cut = score_item(item, from_text(text, 0.1, cut_off=True))
    assert not cut["passed"] and cut["cut_off"] is True
    assert cut["reason"].startswith("unparseable output (cut off at the --max-new-tokens limit)")
    whole = score_item(item, from_text(text, 0.1))
    assert whole["reason"].startswith("unparseable output:") and whole["cut_off"] is False


def test_evaluate_writes_its_progress_beside_the_report_and_a_refusing_store_does_not_stop_it(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """`progress.json` (items done of all, time left) is what `kubetune run` shows for an evaluation step: written
    at most every few seconds and at the last item; a store that refuses it costs a warning, not the evaluation."""
    import itertools

    from kubetune_jobs import storage
    from kubetune_jobs.contract import records
    from kubetune_jobs.evaluate.run import ItemProgress

    clock = itertools.chain([0.0, 1.0, 2.0, 9.0, 10.0], itertools.count(100.0))
    progress = ItemProgress(str(tmp_path), 10, clock=lambda: next(clock))  # started at 0
    written = tmp_path / "progress.json"
    progress(2)  # 1 s in: too soon
    assert not written.exists()
    progress(3)  # 2 s in: too soon
    assert not written.exists()
    progress(3)  # 9 s in: 8 of 10
    first = records.read(records.Progress, written.read_bytes())
    assert (first.state, first.step, first.total) == ("running", 8, 10)
    assert (first.items_per_second, first.eta_seconds) == (pytest.approx(8 / 9, 0.01), pytest.approx(2.2, 0.01))
    progress(2)  # the last item, 10 s in: written however soon
    assert json.loads(written.read_text())["step"] == 10

    def refuse(self: object, obj: object) -> None:
        raise storage.StorageError("store refused the write")

    monkeypatch.setattr(type(storage.location(str(tmp_path)).child("x")), "write_json", refuse)
    failing = ItemProgress(str(tmp_path / "other"), 1)
    failing(1)
    failing(1)  # once refused, not tried again
    assert len([r for r in caplog.records if "progress not written" in r.getMessage()]) == 1
