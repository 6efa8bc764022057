"""One bad row never stops prepare: every row of the malformed corpus (tests/fixtures/malformed, read
as raw bytes) is dropped under the reason its side file names, and the good rows are still written."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from kubetune_jobs import cli
from kubetune_jobs.data import strict_json

CORPUS = Path(__file__).parent.parent / "fixtures" / "malformed"
MAX_ROW_BYTES = 16384  # what the corpus's oversized rows exceed
WEATHER_TOOL = {"name": "get_weather", "description": "Current weather for a city.",
                "parameters": {"city": {"description": "City name", "type": "str"}}}


def corpus(fmt: str) -> list[tuple[int, str, str, bytes]]:
    """(line, expected outcome, description, raw bytes) for each line of the corpus file."""
    raw_lines = (CORPUS / f"{fmt}.jsonl").read_bytes().split(b"\n")
    assert raw_lines[-1] == b""
    table = (CORPUS / f"{fmt}.reasons.tsv").read_text().splitlines()[1:]
    assert len(table) == len(raw_lines) - 1
    rows = []
    for number, (entry, raw) in enumerate(zip(table, raw_lines, strict=False), 1):
        line, expected, what = entry.split("\t")
        assert int(line) == number
        rows.append((number, expected, what, raw))
    return rows


def prepare(src: Path, fmt: str, out: Path, *extra: str) -> dict:
    argv = ["prepare", "--format", fmt, "--source", str(src), "--output", str(out), "--eval-fraction", "0",
            "--max-row-bytes", str(MAX_ROW_BYTES), *extra]
    if fmt == "xlam" and "--no-call-source" not in extra:
        argv += ["--no-call-fraction", "0"]
    assert cli.main(argv) == 0
    return json.loads((out / "stats.json").read_text())


CASES = [(fmt, line, expected, what) for fmt in ("xlam", "ultrachat")
         for line, expected, what, _ in corpus(fmt) if expected != "kept"]


def test_the_corpus_is_large_and_varied() -> None:
    assert len(CASES) >= 50
    assert len({expected for _, _, expected, _ in CASES}) >= 20


@pytest.mark.parametrize(("fmt", "line", "expected", "what"), CASES,
                         ids=[f"{fmt}-{line}-{expected}" for fmt, line, expected, _ in CASES])
def test_each_bad_row_is_dropped_with_its_reason(fmt: str, line: int, expected: str, what: str,
                                                 tmp_path: Path) -> None:
    rows = corpus(fmt)
    good, bad = rows[0][3], rows[line - 1][3]
    src = tmp_path / "source.jsonl"
    src.write_bytes(good + b"\n" + bad + b"\n")
    stats = prepare(src, fmt, tmp_path / "out")
    assert stats["dropped"] == {expected: 1}, what
    assert stats["rows_read"] == 2 and stats["rows_kept"] == 1 and stats["rows_out"] == 1
    assert len(stats["dropped_examples"][expected]) == 1


@pytest.mark.parametrize("fmt", ["xlam", "ultrachat"])
def test_the_whole_corpus_keeps_every_good_row(fmt: str, tmp_path: Path) -> None:
    rows = corpus(fmt)
    stats = prepare(CORPUS / f"{fmt}.jsonl", fmt, tmp_path / "out")
    assert stats["rows_read"] == len(rows)
    assert stats["dropped"] == dict(Counter(expected for _, expected, _, _ in rows if expected != "kept"))
    assert counted(stats) == stats["rows_kept"]

    kept = [json.loads(raw.decode("utf-8-sig")) for _, expected, _, raw in rows if expected == "kept"]
    wanted = {k["query"] if fmt == "xlam" else k["messages"][-1]["content"] for k in kept}
    written = (tmp_path / "out" / "train.jsonl").read_bytes().decode("utf-8").splitlines()
    assert len(written) == len(kept) == stats["rows_out"]
    got = set()
    for text in written:
        row = strict_json.loads(text)  # what prepare writes is plain JSON, every line
        got.add(next(m["content"] for m in row["messages"] if m["role"] == "user") if fmt == "xlam"
                else row["messages"][-1]["content"])
    assert got == wanted


def counted(stats: dict) -> int:
    """The source rows stats.json accounts for besides the kept ones: read, less each dropped row once."""
    return stats["rows_read"] - sum(stats["dropped"].values())


NO_CALL = ("--no-call-source", "bundled:quickstart-chat")


@pytest.mark.parametrize("tool", [
    {**WEATHER_TOOL, "description": 5},
    {"type": "function", "function": {"name": "get_weather", "description": 5, "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
], ids=["xlam", "json-schema"])
def test_a_dropped_row_beside_generated_no_call_rows_adds_up(tool: dict, tmp_path: Path) -> None:
    """A tool whose description is a number drops its row; the no-call row generated beside the kept one is
    counted as generated, not as a source row kept (stats.json said 2 read, 2 kept, 1 dropped)."""
    rows = corpus("xlam")
    bad = json.dumps({"query": "Is it raining in Lima?", "tools": json.dumps([tool]),
                      "answers": json.dumps([{"name": "get_weather", "arguments": {"city": "Lima"}}])})
    src = tmp_path / "source.jsonl"
    src.write_bytes(rows[0][3] + b"\n" + bad.encode() + b"\n")
    stats = prepare(src, "xlam", tmp_path / "out", *NO_CALL, "--no-call-fraction", "0.5")
    assert stats["rows_read"] == 2 and stats["dropped"] == {"invalid_tool_schema": 1}
    assert stats["rows_kept"] == 1 == counted(stats)
    assert stats["no_call"]["generated"] == 1 and stats["rows_out"] == 2


@pytest.mark.parametrize("extra", [
    (*NO_CALL, "--no-call-fraction", "0.5"),
    (*NO_CALL, "--no-call-fraction", "0.3", "--near-miss-share", "0.5"),
    (*NO_CALL, "--no-call-fraction", "0.3", "--turns-per-row", "3"),
    ("--no-call-fraction", "0", "--max-samples", "5"),
], ids=["no-call", "near-miss", "conversations", "max-samples"])
def test_every_source_row_is_kept_or_dropped_once(extra: tuple[str, ...], tmp_path: Path) -> None:
    rows = corpus("xlam")
    stats = prepare(CORPUS / "xlam.jsonl", "xlam", tmp_path / "out", *extra)
    assert stats["rows_read"] == len(rows)
    assert stats["rows_kept"] == counted(stats) >= 1
    written = [strict_json.loads(t) for t in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    calls = sum(1 for r in written for m in r["messages"] if m["role"] == "assistant" and m.get("tool_calls"))
    assert calls == stats["rows_kept"]  # each kept xlam row is one request and its calls, in the output once
    if "--max-samples" in extra:
        assert stats["rows_kept"] == 5 and stats["dropped"]["max_samples"] == sum(e == "kept" for _, e, _, _ in rows) - 5


def test_rows_dropped_after_conversion_are_counted_once(tmp_path: Path) -> None:
    """--max-tokens drops rows after conversion: a source row under too_long, a generated no-call row under the
    no-call counts; either way the source rows still add up."""
    stats = prepare(CORPUS / "xlam.jsonl", "xlam", tmp_path / "out", *NO_CALL, "--no-call-fraction", "0.5",
                    "--tokenizer", "bundled:smollm2-135m", "--max-tokens", "300")
    assert stats["dropped"].get("too_long", 0) >= 1 and stats["no_call"].get("dropped", {}).get("too_long", 0) >= 1
    assert stats["rows_kept"] == counted(stats) >= 1


def test_a_bad_no_call_source_row_is_counted_there(tmp_path: Path) -> None:
    chats = corpus("ultrachat")
    stats = prepare(CORPUS / "xlam.jsonl", "xlam", tmp_path / "out", "--no-call-source",
                    str(CORPUS / "ultrachat.jsonl"), "--no-call-fraction", "0.25")
    assert stats["no_call"]["source_dropped"] == dict(Counter(e for _, e, _, _ in chats if e != "kept"))
    assert stats["no_call"]["generated"] >= 1


def test_a_json_list_file_loses_only_its_undecodable_row(tmp_path: Path) -> None:
    good = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "Yes."}]}
            for q in ("One?", "Two?")]
    body = json.dumps([good[0], {"messages": [{"role": "user", "content": "BAD"}]}, good[1]]).encode()
    src = tmp_path / "rows.json"
    src.write_bytes(body.replace(b"BAD", b"B\xe4d"))
    stats = prepare(src, "ultrachat", tmp_path / "out")
    assert stats["dropped"] == {"invalid_utf8": 1} and stats["rows_out"] == 2


@pytest.mark.parametrize(("value", "reason"), [
    ({1: "a"}, "non_string_key"),
    ({"when": b"2026"}, "unsupported_value"),
    ([float("nan")], "non_finite_number"),
    ({"n": 10**150}, "huge_integer"),
    ("\udc80", "lone_surrogate"),
])
def test_values_json_cannot_hold_are_named(value: object, reason: str) -> None:
    # Rows from Parquet or the Hub are Python values already; the same check gates what prepare writes.
    with pytest.raises(strict_json.InvalidJSON) as err:
        strict_json.check(value)
    assert err.value.reason == reason


@pytest.mark.parametrize("stats", [b"[]", b"\xff\xfe", b'{"files": {"../../../etc/hostname": "00"}}', b'{"files": 3}'])
def test_a_tampered_stats_file_means_prepare_again(tmp_path: Path, stats: bytes) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "stats.json").write_bytes(stats)
    again = prepare(CORPUS / "ultrachat.jsonl", "ultrachat", out)
    assert again["rows_out"] == 3 and set(again["files"]) == {"train.jsonl", "eval.jsonl"}
