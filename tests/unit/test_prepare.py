"""The data-preparation job: conversion, validation, no-call augmentation, determinism, storage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubetune_jobs import chat_template, cli
from kubetune_jobs.contract.options import PrepareOptions
from kubetune_jobs.data import conversations, convert
from kubetune_jobs.data import prepare as prepare_job
from kubetune_jobs.data.schema import python_type_to_schema, to_openai_tool

FIXTURES = Path(__file__).parent.parent / "fixtures"
XLAM = FIXTURES / "xlam_sample.jsonl"
CHAT = FIXTURES / "ultrachat_sample.jsonl"


def prepare(*argv: str) -> int:
    return cli.main(["prepare", *argv])


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def all_rows(out: Path) -> list[dict]:
    return read_rows(out / "train.jsonl") + read_rows(out / "eval.jsonl")


@pytest.fixture
def xlam_out(tmp_path: Path) -> Path:
    out = tmp_path / "tools"
    assert prepare("--format", "xlam", "--source", str(XLAM), "--output", str(out),
                   "--no-call-source", str(CHAT), "--no-call-fraction", "0.25", "--eval-fraction", "0.2") == 0
    return out


@pytest.mark.parametrize(("annotation", "schema"), [
    ("str", {"type": "string"}),
    ("int", {"type": "integer"}),
    ("float", {"type": "number"}),
    ("bool", {"type": "boolean"}),
    ("List[str]", {"type": "array", "items": {"type": "string"}}),
    ("Dict[str, Any]", {"type": "object"}),
    ("Dict[str, int]", {"type": "object", "additionalProperties": {"type": "integer"}}),
    ("Set[int]", {"type": "array", "uniqueItems": True, "items": {"type": "integer"}}),
    ("Tuple[float, float]", {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}],
                             "minItems": 2, "maxItems": 2}),
    ("Tuple[int, ...]", {"type": "array", "items": {"type": "integer"}}),
    ("Optional[str]", {"type": "string"}),
    ("Union[int, str]", {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
    ("List[Dict[str, Any]]", {"type": "array", "items": {"type": "object"}}),
    ("Callable", {"type": "string"}),
    ("Any", {}),
])
def test_xlam_types_map_to_json_schema(annotation: str, schema: dict) -> None:
    assert python_type_to_schema(annotation) == schema


def test_optional_parameters_are_not_required() -> None:
    tool = to_openai_tool({"name": "f", "description": "d", "parameters": {
        "a": {"type": "str", "description": "x"},
        "b": {"type": "int, optional", "default": 2},
        "c": {"type": "Optional[List[int]]"},
        "d": {"type": "float, default=0.5"},
    }})
    params = tool["function"]["parameters"]
    assert params["required"] == ["a"]
    assert params["properties"]["b"] == {"type": "integer", "default": 2}
    assert tool["type"] == "function" and tool["function"]["name"] == "f"


def test_json_schema_tools_pass_through_unchanged() -> None:
    tool = {"type": "function", "function": {"name": "g", "description": "",
                                             "parameters": {"type": "object", "properties": {}}}}
    assert to_openai_tool(tool) == tool
    assert to_openai_tool(tool["function"]) == tool


def test_xlam_conversion_counts_every_broken_row_by_reason(xlam_out: Path) -> None:
    stats = json.loads((xlam_out / "stats.json").read_text())
    assert stats["rows_read"] == 20
    assert stats["dropped"] == {
        "duplicate": 1, "empty_query": 1, "invalid_tool_schema": 1, "malformed_answers_json": 1,
        "malformed_json": 2, "malformed_tools_json": 1, "missing_field": 1, "missing_required_argument": 1,
        "no_calls": 1, "unknown_argument": 1, "unknown_tool": 1, "wrong_argument_type": 2,
    }
    assert len(stats["dropped"]) >= 10
    assert stats["kinds"]["call"] == 6
    assert all(stats["dropped_examples"][reason] for reason in stats["dropped"])


def test_parallel_calls_stay_in_one_turn_in_order(xlam_out: Path) -> None:
    rows = [r for r in all_rows(xlam_out) if r["kind"] == "call"]
    parallel = next(r for r in rows if r["messages"][0]["content"].startswith("Convert 120.5 USD"))
    assert [m["role"] for m in parallel["messages"]] == ["user", "assistant"]
    calls = parallel["messages"][1]["tool_calls"]
    assert [(c["function"]["name"], c["function"]["arguments"].get("source")) for c in calls] == [
        ("convert_currency", "USD"), ("convert_currency", "GBP"), ("city_forecast", None)]
    assert all(c["type"] == "function" and isinstance(c["function"]["arguments"], dict) for c in calls)


def test_nested_object_arguments_are_dicts(xlam_out: Path) -> None:
    row = next(r for r in all_rows(xlam_out) if r["tools"] and r["tools"][0]["function"]["name"] == "create_order"
               and r["kind"] == "call")
    args = row["messages"][-1]["tool_calls"][0]["function"]["arguments"]
    assert args["customer"]["address"] == {"city": "Porto", "country": "PT"}
    assert args["items"][1] == {"sku": "POT-7", "qty": 1}
    schema = row["tools"][0]["function"]["parameters"]
    assert schema["properties"]["customer"]["type"] == "object"
    assert schema["required"] == ["customer", "items"]


def test_no_call_rows_offer_unrelated_tools_and_answer_in_text(xlam_out: Path) -> None:
    rows = all_rows(xlam_out)
    no_calls = [r for r in rows if r["kind"] == "no_call"]
    stats = json.loads((xlam_out / "stats.json").read_text())
    assert len(no_calls) == stats["no_call"]["generated"] == 2  # 0.25 of 8 rows
    assert stats["no_call_share"] == pytest.approx(0.25)
    for row in no_calls:
        assert row["tools"], "a no-call example must offer tools"
        assert not row["messages"][-1].get("tool_calls")
        assert row["messages"][-1]["role"] == "assistant" and row["messages"][-1]["content"]


def test_no_call_fraction_without_a_chat_source_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert prepare("--format", "xlam", "--source", str(XLAM), "--output", str(tmp_path / "o")) == 1
    assert "--no-call-source" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_ultrachat_conversion(tmp_path: Path) -> None:
    out = tmp_path / "chat"
    assert prepare("--format", "ultrachat", "--source", str(CHAT), "--output", str(out),
                   "--system-prompt", "You are kubetune's assistant.", "--eval-fraction", "0") == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["dropped"] == {"duplicate": 1, "empty_message": 1, "malformed_message": 1,
                                "missing_messages": 1, "no_assistant_reply": 1, "roles_not_alternating": 1}
    rows = read_rows(out / "train.jsonl")
    assert len(rows) == 4
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        assert roles[0] == "system" and row["messages"][0]["content"] == "You are kubetune's assistant."
        assert roles[1:] == ["user", "assistant"] * ((len(roles) - 1) // 2)
    assert max(len(r["messages"]) for r in rows) == 5  # multi-turn kept
    trailing = next(r for r in rows if r["messages"][1]["content"] == "Define entropy.")
    assert trailing["messages"][-1]["role"] == "assistant"  # the unanswered question was trimmed


def test_render_then_parse_gives_back_exactly_the_calls(xlam_out: Path, tmp_path: Path) -> None:
    out = tmp_path / "chat"
    assert prepare("--format", "ultrachat", "--source", str(CHAT), "--output", str(out)) == 0
    rows = all_rows(xlam_out) + all_rows(out)
    assert {r["kind"] for r in rows} == {"call", "no_call", "chat"}
    for row in rows:
        text, spans = chat_template.render(row, return_assistant_mask=True)
        assistant = [m for m in row["messages"] if m["role"] == "assistant"]
        assert len(spans) == len(assistant)
        for message, (start, end) in zip(assistant, spans, strict=True):
            parsed = chat_template.parse_tool_calls(text[start:end])
            assert parsed.errors == []
            assert parsed.calls == chat_template.assistant_calls(message)
        if row["tools"]:
            assert "<tools>" in text and row["tools"][0]["function"]["name"] in text


def test_same_inputs_and_seed_give_byte_identical_outputs(tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert prepare("--format", "xlam", "--source", str(XLAM), "--output", str(out), "--seed", "7",
                       "--no-call-source", str(CHAT), "--eval-fraction", "0.3") == 0
        outs.append(out)
    for name in ("train.jsonl", "eval.jsonl", "stats.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    other = tmp_path / "c"
    assert prepare("--format", "xlam", "--source", str(XLAM), "--output", str(other), "--seed", "8",
                   "--no-call-source", str(CHAT), "--eval-fraction", "0.3") == 0
    def calls(out: Path) -> list[dict]:
        return sorted((r for r in all_rows(out) if r["kind"] == "call"), key=json.dumps)

    assert calls(other) == calls(outs[0])  # another seed: the same rows, in another order and split
    assert (other / "train.jsonl").read_bytes() != (outs[0] / "train.jsonl").read_bytes()


def test_rerun_with_verified_outputs_is_a_no_op_and_damage_is_repaired(xlam_out: Path, caplog) -> None:
    argv = ["--format", "xlam", "--source", str(XLAM), "--output", str(xlam_out),
            "--no-call-source", str(CHAT), "--no-call-fraction", "0.25", "--eval-fraction", "0.2"]
    caplog.set_level("INFO")
    before = {p.name: p.stat().st_mtime_ns for p in xlam_out.iterdir()}
    assert prepare(*argv) == 0
    assert {p.name: p.stat().st_mtime_ns for p in xlam_out.iterdir()} == before
    assert "nothing to do" in caplog.text
    good = (xlam_out / "train.jsonl").read_bytes()
    (xlam_out / "train.jsonl").write_bytes(good[:-10])
    assert prepare(*argv) == 0
    assert (xlam_out / "train.jsonl").read_bytes() == good


def test_max_samples_and_eval_split(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert prepare("--format", "xlam", "--source", str(XLAM), "--output", str(out), "--max-samples", "4",
                   "--no-call-fraction", "0", "--eval-fraction", "0.25") == 0
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["train_rows"], stats["eval_rows"]) == (3, 1)
    assert len(read_rows(out / "train.jsonl")) == 3 and len(read_rows(out / "eval.jsonl")) == 1
    assert stats["tools_per_row"] and stats["calls_per_turn"] and stats["turns_per_row"] == {"1": stats["rows_out"]}
    assert stats["content_hash"] and stats["files"]["train.jsonl"]


def test_rows_longer_than_max_tokens_are_dropped(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert prepare("--format", "ultrachat", "--source", str(CHAT), "--output", str(out), "--eval-fraction", "0",
                   "--tokenizer", "bundled:smollm2-135m", "--max-tokens", "45") == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["length"]["unit"] == "tokens"
    assert stats["length"]["max"] <= 45
    assert stats["dropped"].get("too_long", 0) >= 1
    assert stats["train_rows"] == 4 - stats["dropped"]["too_long"]


def test_missing_source_and_empty_result_fail_cleanly(tmp_path: Path, capsys) -> None:
    assert prepare("--format", "xlam", "--source", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o"),
                   "--no-call-fraction", "0") == 1
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "x"}\nnot json\n')
    assert prepare("--format", "xlam", "--source", str(bad), "--output", str(tmp_path / "o"),
                   "--no-call-fraction", "0") == 1
    err = capsys.readouterr().err
    assert "no usable rows" in err and "malformed_json=1" in err and "missing_field=1" in err
    assert not (tmp_path / "o").exists()


def test_converter_rejects_bool_for_int() -> None:
    tool = {"name": "mean_of", "description": "", "parameters": {"values": {"type": "List[int]"}}}
    row = {"query": "q", "tools": json.dumps([tool]),
           "answers": json.dumps([{"name": "mean_of", "arguments": {"values": [True]}}])}
    with pytest.raises(convert.Dropped) as info:
        convert.xlam(row)
    assert info.value.reason == "wrong_argument_type"


def test_parquet_source(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in XLAM.read_text().splitlines()[:6]]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "x.parquet")
    out = tmp_path / "o"
    assert prepare("--format", "xlam", "--source", str(tmp_path / "x.parquet"), "--output", str(out),
                   "--no-call-fraction", "0", "--eval-fraction", "0") == 0
    assert json.loads((out / "stats.json").read_text())["train_rows"] == 6


def test_near_miss_no_call_rows_come_from_tool_requests_with_unfitting_tools(xlam_out: Path) -> None:
    rows = all_rows(xlam_out)
    stats = json.loads((xlam_out / "stats.json").read_text())
    assert stats["no_call"]["near_miss"] == 1 and stats["no_call"]["from_chat"] == 1
    queries = {r["messages"][0]["content"]: r for r in rows if r["kind"] == "call"}
    near = [r for r in rows if r["kind"] == "no_call" and r["messages"][0]["content"] in queries]
    assert len(near) == 1
    offered = {t["function"]["name"] for t in near[0]["tools"]}
    needed = {t["function"]["name"] for t in queries[near[0]["messages"][0]["content"]]["tools"]}
    assert offered and not offered & needed
    answer = near[0]["messages"][-1]
    assert answer["role"] == "assistant" and not answer.get("tool_calls") and answer["content"]


def _exchanges(row: dict) -> list[tuple[str, dict]]:
    turns = [m for m in row["messages"] if m["role"] != "system"]
    return [(u["content"], a) for u, a in zip(turns[::2], turns[1::2], strict=True)]


def test_turns_per_row_shares_one_tools_block_and_keeps_every_request(tmp_path: Path) -> None:
    common = ["--format", "xlam", "--source", "bundled:quickstart-tools", "--max-samples", "120",
              "--no-call-source", "bundled:quickstart-chat", "--no-call-fraction", "0.5", "--eval-fraction", "0.05"]
    assert prepare(*common, "--output", str(tmp_path / "single")) == 0
    assert prepare(*common, "--output", str(tmp_path / "grouped"), "--turns-per-row", "4") == 0
    single, grouped = all_rows(tmp_path / "single"), all_rows(tmp_path / "grouped")
    stats = json.loads((tmp_path / "grouped" / "stats.json").read_text())

    wanted = {r["messages"][-2]["content"]: r["messages"][-1]["tool_calls"] for r in single if r["kind"] == "call"}
    asked: dict[str, list] = {}
    no_call_turns = first_turn_calls = sharing_words = 0
    for row in grouped:
        offered = {t["function"]["name"]: t for t in row["tools"]}
        exchanges = _exchanges(row)
        assert 1 <= len(exchanges) <= 4
        first_turn_calls += bool(exchanges[0][1].get("tool_calls"))
        _, spans = chat_template.render(row, return_assistant_mask=True)
        assert len(spans) == len(exchanges), "every assistant turn is trained, not only the last"
        for request, answer in exchanges:
            if answer.get("tool_calls"):
                assert request not in asked
                asked[request] = answer["tool_calls"]
                for call in answer["tool_calls"]:
                    schema = offered[call["function"]["name"]]["function"]["parameters"]
                    assert set(schema.get("required", [])) <= set(call["function"]["arguments"])
                continue
            no_call_turns += 1
            assert answer["content"].strip()
            if request in wanted:  # a near miss: the tools it needs are not offered here
                assert not {c["function"]["name"] for c in wanted[request]} & set(offered)
                sharing_words += bool(convert.content_words(request) & set().union(*map(convert.tool_words, row["tools"])))
            else:  # a chat turn shares no word with the offered tools
                assert not convert.content_words(request) & set().union(*map(convert.tool_words, row["tools"]))
    # Every converted request is asked exactly once, with the calls it had on its own.
    assert asked == wanted
    assert stats["kinds"] == {"call": len(wanted), "no_call": no_call_turns}
    assert stats["no_call_share"] == pytest.approx(0.5, abs=0.02)
    # Some near misses share words with the offered tools (word overlap alone must not decide a call),
    # and some conversations offer a single tool, as BFCL irrelevance does.
    assert 0 < stats["no_call"]["near_miss_sharing_words"] == sharing_words < stats["no_call"]["near_miss"]
    assert sum(len(r["tools"]) == 1 for r in grouped) >= 0.1 * len(grouped)
    # Most conversations are full. Rows whose tools are respelled (datagen's Config.respelled_share) can
    # only share a conversation with rows of the same spelling, so a small source leaves more of them short.
    assert stats["turns_per_row"].get("4", 0) >= 0.5 * len(grouped)
    # The point: each tools block is rendered for several requests, so far fewer blocks are trained on.
    assert sum(len(r["tools"]) for r in grouped) < 0.4 * sum(len(r["tools"]) for r in single)
    # Evaluation asks the first turn, so it holds calls and no-calls alike.
    assert 0.25 * len(grouped) < first_turn_calls < 0.75 * len(grouped)


@pytest.mark.parametrize("share", [0.0, 0.3])
def test_no_call_conversations_offer_one_or_two_tools_that_fit_none_of_their_requests(
        tmp_path: Path, share: float) -> None:
    args = PrepareOptions.from_namespace(cli.build_parser().parse_args([
        "prepare", "--format", "xlam", "--source", "bundled:quickstart-tools", "--max-samples", "160",
        "--no-call-source", "bundled:quickstart-chat", "--no-call-fraction", "0.5",
        "--output", str(tmp_path / "o"), "--turns-per-row", "4"]))
    assert prepare_job.run(args, conversations.Settings(no_call_block_share=share)) == 0
    rows, stats = all_rows(tmp_path / "o"), json.loads((tmp_path / "o" / "stats.json").read_text())
    # Each call request is asked once somewhere with its calls; a near miss repeats it elsewhere.
    requests = {q: {c["function"]["name"] for c in a["tool_calls"]}
                for r in rows for q, a in _exchanges(r) if a.get("tool_calls")}
    without = [r for r in rows if not any(a.get("tool_calls") for _, a in _exchanges(r))]
    assert len(without) == stats["no_call"]["conversations_without_calls"]
    assert stats["no_call_share"] == pytest.approx(0.5, abs=0.02)  # moved out of the call conversations, not added
    if not share:
        assert not without
        return
    no_call_turns = stats["kinds"]["no_call"]
    in_blocks = sum(len(_exchanges(r)) for r in without)
    assert share - 0.05 <= in_blocks / no_call_turns <= share + 0.05
    near_misses = 0
    for row in without:
        offered = {t["function"]["name"] for t in row["tools"]}
        assert 1 <= len(offered) <= 2
        for request, answer in _exchanges(row):
            assert answer["content"].strip() and not answer.get("tool_calls")
            assert not requests.get(request, set()) & offered
            near_misses += request in requests
    assert near_misses  # tool requests that these tools cannot serve, not only small talk


def test_other_conversation_settings_are_another_preparation(tmp_path: Path) -> None:
    args = PrepareOptions.from_namespace(cli.build_parser().parse_args([
        "prepare", "--format", "xlam", "--source", str(XLAM), "--no-call-source", str(CHAT),
        "--output", str(tmp_path / "o"), "--turns-per-row", "2", "--eval-fraction", "0"]))
    assert prepare_job.run(args) == 0
    before = json.loads((tmp_path / "o" / "stats.json").read_text())
    # Not "nothing to do": the output of the defaults is not the output of these settings.
    assert prepare_job.run(args, conversations.Settings(only_called_tools_share=1.0)) == 0
    after = json.loads((tmp_path / "o" / "stats.json").read_text())
    assert after["fingerprint"] != before["fingerprint"]
    for row in all_rows(tmp_path / "o"):
        called = {c["function"]["name"] for _, a in _exchanges(row) for c in a.get("tool_calls") or []}
        if called:  # every conversation offers only the tools its founding row calls
            assert {t["function"]["name"] for t in row["tools"]} <= called, row


def test_conversation_settings_are_shares() -> None:
    with pytest.raises(ValueError, match="hard_near_miss_share"):
        conversations.Settings(hard_near_miss_share=2)


def test_turns_per_row_must_be_positive(tmp_path: Path, capsys) -> None:
    assert prepare("--format", "xlam", "--source", str(XLAM), "--output", str(tmp_path / "o"),
                   "--no-call-fraction", "0", "--turns-per-row", "0") == 1
    assert "--turns-per-row" in capsys.readouterr().err
