"""Loss masking: only assistant output (tool calls and <|im_end|> included) is trained."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubetune_jobs import chat_template
from kubetune_jobs.train.data import IGNORE_INDEX, DataError, load_datasets, tokenize_row

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIMER = {"type": "function", "function": {"name": "set_timer", "description": "Start a timer",
         "parameters": {"type": "object", "properties": {"minutes": {"type": "integer"}}}}}


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


TOOL_ROW = {
    "tools": [WEATHER, TIMER],
    "messages": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Weather in Oslo and Lima?"},
        {"role": "assistant", "content": "", "tool_calls": [call("get_weather", city="Oslo"),
                                                           call("get_weather", city="Lima")]},
        {"role": "tool", "content": json.dumps({"temp_c": -3})},
        {"role": "tool", "content": json.dumps({"temp_c": 19})},
        {"role": "assistant", "content": "Oslo is at -3 C and Lima at 19 C."},
        {"role": "user", "content": "Then set a timer for 5 minutes."},
        {"role": "assistant", "content": "Sure.", "tool_calls": [call("set_timer", minutes=5)]},
        {"role": "tool", "content": "timer started"},
        {"role": "assistant", "content": "Done."},
    ],
}
CHAT_ROW = {
    "messages": [
        {"role": "user", "content": "Name a prime number."},
        {"role": "assistant", "content": "Seven."},
        {"role": "user", "content": "And an even one?"},
        {"role": "assistant", "content": "Two is the only even prime."},
    ],
}
SECRET_TEXTS = ["You are a terse assistant.", "Weather in Oslo and Lima?", '"temp_c": -3', '"temp_c": 19',
                "timer started", "Then set a timer for 5 minutes.", "Name a prime number.", "And an even one?",
                "# Tools", "<tool_response>"]


def expected_outputs(row: dict[str, Any]) -> list[str]:
    """What each assistant turn must produce, written out independently of the template's spans."""
    out = []
    for msg in row["messages"]:
        if msg["role"] != "assistant":
            continue
        text = "\n" + msg["content"] if msg["content"] or not msg.get("tool_calls") else ""
        for c in chat_template.assistant_calls(msg):
            body = json.dumps({"name": c["name"], "arguments": c["arguments"]})
            text += f"\n<tool_call>\n{body}\n</tool_call>"
        out.append(text + "<|im_end|>\n")
    return out


def trained_runs(tokenizer: Any, item: dict[str, list[int]]) -> list[str]:
    runs, current = [], []
    for tok, label in zip(item["input_ids"], item["labels"], strict=True):
        if label != IGNORE_INDEX:
            assert label == tok, "a trained label must be the token itself"
            current.append(tok)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    if current:
        runs.append(tokenizer.decode(current))
    return runs


@pytest.mark.parametrize("row", [TOOL_ROW, CHAT_ROW], ids=["tools", "chat"])
def test_only_assistant_output_is_trained(smollm2_tokenizer: Any, row: dict[str, Any]) -> None:
    item = tokenize_row(row, smollm2_tokenizer)
    text = chat_template.render(row)
    assert smollm2_tokenizer.decode(item["input_ids"]) == text
    # Each assistant turn is one contiguous trained run, exactly its output, and nothing else is trained.
    assert trained_runs(smollm2_tokenizer, item) == expected_outputs(row)
    masked = smollm2_tokenizer.decode([t for t, lab in zip(item["input_ids"], item["labels"], strict=True)
                                       if lab == IGNORE_INDEX])
    for secret in SECRET_TEXTS:
        if secret in text:
            assert secret in masked


def test_every_end_of_turn_of_the_assistant_is_trained(smollm2_tokenizer: Any) -> None:
    item = tokenize_row(TOOL_ROW, smollm2_tokenizer)
    eot = smollm2_tokenizer.convert_tokens_to_ids(chat_template.END_OF_TURN)
    flags = [lab != IGNORE_INDEX for tok, lab in zip(item["input_ids"], item["labels"], strict=True) if tok == eot]
    n_assistant = sum(m["role"] == "assistant" for m in TOOL_ROW["messages"])
    # system, 2 user turns, 2 tool-response turns are masked; every assistant turn's end is trained.
    assert flags.count(True) == n_assistant
    assert flags.count(False) == len(flags) - n_assistant == 5


def test_truncation_keeps_the_start_and_drops_rows_with_nothing_to_train(smollm2_tokenizer: Any, tmp_path) -> None:
    item = tokenize_row(TOOL_ROW, smollm2_tokenizer, max_length=40)
    assert len(item["input_ids"]) == 40 and set(item["labels"]) == {IGNORE_INDEX}
    (tmp_path / "train.jsonl").write_text(json.dumps(TOOL_ROW) + "\n")
    with pytest.raises(DataError, match="empty dataset after filtering"):
        load_datasets(str(tmp_path), smollm2_tokenizer, max_length=40)
    train, evald, stats = load_datasets(str(tmp_path), smollm2_tokenizer, max_length=2048)
    assert evald is None and stats["train_rows"] == 1 and train.column_names == ["input_ids", "labels"]


def test_missing_and_malformed_data_are_named(smollm2_tokenizer: Any, tmp_path) -> None:
    with pytest.raises(DataError, match=r"missing dataset: .*train\.jsonl"):
        load_datasets(str(tmp_path), smollm2_tokenizer, max_length=64)
    (tmp_path / "train.jsonl").write_text('{"messages": []}\nnot json\n')
    with pytest.raises(DataError, match="line 2 is not JSON"):
        load_datasets(str(tmp_path), smollm2_tokenizer, max_length=64)


@pytest.fixture(scope="module")
def smollm2_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from kubetune_jobs.models import resolve

    return AutoTokenizer.from_pretrained(resolve("bundled:smollm2-135m"))
