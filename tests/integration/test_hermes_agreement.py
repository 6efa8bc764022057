"""What our evaluator reads from raw model text is exactly what vLLM's `hermes` tool parser gives a
client: every output of a hand-written corpus (well-formed, malformed, cut off, oddly shaped) through
`parse_tool_calls` and the evaluator's `from_text`, against vLLM's own parser run in its venv."""

from __future__ import annotations

import json
from pathlib import Path

from kubetune_jobs.cli import main
from support.hermes import compare_report, compare_texts

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "hermes" / "corpus.jsonl"


def load_corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_raw_outputs_read_as_vllms_hermes_parser_reads_them(servable_smollm2: Path, record_property) -> None:
    corpus = load_corpus()
    texts = {row["id"]: row["text"] for row in corpus}
    assert len(texts) == len(corpus) >= 60, "corpus ids must be unique"
    refs = compare_texts(texts, servable_smollm2)
    # The corpus exercises both outcomes, with content beside calls and markup hermes rejects.
    called = [k for k, r in refs.items() if r["extract"]["tools_called"]]
    rejected = [k for k, r in refs.items() if "<tool_call>" in texts[k] and not r["extract"]["tools_called"]]
    assert len(called) >= 20 and len(rejected) >= 20, (len(called), len(rejected))
    assert any(refs[k]["served"]["content"] for k in called)
    record_property("hermes_compared", len(refs))
    print(f"compared {len(refs)} raw outputs with vLLM's hermes parser: {len(called)} with calls, "
          f"{len(rejected)} with markup it rejects")


def test_report_records_what_vllms_reply_would_have_scored(servable_smollm2: Path, tmp_path: Path) -> None:
    """The corpus as offline text predictions for as many BFCL items: what report.json records for
    each (unparseable, called, calls, text) is what vLLM's reply to that text would have given."""
    from kubetune_jobs.evaluate import suites

    corpus = load_corpus()
    items = suites.load("bfcl-simple_python", limit=len(corpus))
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": it.id, "text": row["text"]}) + "\n"
                             for it, row in zip(items, corpus, strict=True)))
    assert main(["evaluate", "--suite", "bfcl-simple_python", "--limit", str(len(corpus)), "--predictions",
                 str(preds), "--output", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [r["raw"] for r in report["items"]] == [row["text"] for row in corpus]
    assert compare_report(report, servable_smollm2) == len(corpus)
