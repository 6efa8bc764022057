"""What our evaluator reads from raw model text is exactly what vLLM's `hermes` tool parser gives a
client: every output of a hand-written corpus (well-formed, malformed, cut off, oddly shaped) through
`parse_tool_calls` and the evaluator's `from_text`, against vLLM's own parser run in its venv."""

from __future__ import annotations

import json
from pathlib import Path

from support.hermes import compare_texts

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "hermes" / "corpus.jsonl"


def test_raw_outputs_read_as_vllms_hermes_parser_reads_them(servable_smollm2: Path, record_property) -> None:
    corpus = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
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
