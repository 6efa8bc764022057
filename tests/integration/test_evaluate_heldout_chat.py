"""The heldout and chat suites over a run's prepared data (several stages), with a real local model."""

from __future__ import annotations

import json
import math
from pathlib import Path

from kubetune_jobs import cli

FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_heldout_and_chat_suites_read_every_stage(tmp_path: Path, tiny_qwen2: str) -> None:
    chat, tools = tmp_path / "data" / "chat", tmp_path / "data" / "tools"
    assert cli.main(["prepare", "--format", "ultrachat", "--source", str(FIXTURES / "ultrachat_sample.jsonl"),
                     "--output", str(chat), "--eval-fraction", "0.49"]) == 0
    assert cli.main(["prepare", "--format", "xlam", "--source", str(FIXTURES / "xlam_sample.jsonl"),
                     "--output", str(tools), "--no-call-source", str(FIXTURES / "ultrachat_sample.jsonl"),
                     "--no-call-fraction", "0.25", "--eval-fraction", "0.49"]) == 0
    out = tmp_path / "report"
    assert cli.main(["evaluate", "--local-model", tiny_qwen2, "--suite", "heldout", "--suite", "chat",
                     "--data", str(chat), "--data", str(tools), "--output", str(out),
                     "--max-new-tokens", "16"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["complete"] is True
    held_rows = [json.loads(line) for line in (tools / "eval.jsonl").read_text().splitlines()]
    chat_rows = [json.loads(line) for line in (chat / "eval.jsonl").read_text().splitlines()]
    by_suite: dict[str, list[dict]] = {}
    for item in report["items"]:
        by_suite.setdefault(item["suite"], []).append(item)
    assert len(by_suite["heldout"]) == sum(r["kind"] != "chat" for r in held_rows)
    assert len(by_suite["chat"]) == len(chat_rows) > 0
    chat_agg = report["suites"]["chat"]
    # A random tiny model: loss near ln(vocab), perplexity exp(loss), both finite and positive.
    assert chat_agg["tokens"] > 0 and 0 < chat_agg["loss"] < 20
    assert math.isclose(chat_agg["perplexity"], math.exp(chat_agg["loss"]), rel_tol=1e-6)
    assert all(item["passed"] is None for item in by_suite["chat"])
    # A random model emits no valid calls: every heldout call item fails, every no-call item passes.
    for item in by_suite["heldout"]:
        assert item["passed"] is (item["category"] == "no_call"), item
