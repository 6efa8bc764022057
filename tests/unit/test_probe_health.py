"""The live probe reads replies as a client of the endpoint does: calls from `tool_calls` only; call markup left in
the content is unparseable (and never a pass, even where no call was wanted); a request without an answer counts
wrong. Its round figures and health line follow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubetune_jobs.contract.options import ProbeOptions
from kubetune_jobs.evaluate import suites
from kubetune_jobs.evaluate.targets import Prediction, from_message
from kubetune_jobs.probe.health import (
    CALL_AS_TEXT,
    LEFT_IN_CONTENT,
    as_client_reads,
    call_in_text,
    line,
    score,
    summarize,
)
from kubetune_jobs.probe.run import items_of

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "probe" / "few-shot-weather.jsonl"
MARKUP = '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Lisbon"}}\n</tool_call>'


def _call(city: object, name: str = "get_weather") -> dict:
    args = city if isinstance(city, str) and city.startswith("{") else json.dumps({"location": city})
    return {"type": "function", "function": {"name": name, "arguments": args}}


@pytest.fixture
def items() -> list[suites.Item]:
    return suites.file_items(str(FIXTURE), "probe")  # 4 call items (Lisbon, Tokyo, Madrid, Cairo), 1 no-call


def test_markup_left_in_the_content_is_unparseable_for_a_client_though_the_evaluator_reads_it() -> None:
    assert from_message(MARKUP, []).calls  # the evaluator reads the text as the model's call
    client = as_client_reads(MARKUP, [])
    assert client.calls == [] and client.errors == [LEFT_IN_CONTENT]
    parsed = as_client_reads(None, [_call("Lisbon")])
    assert parsed.calls == [{"name": "get_weather", "arguments": {"location": "Lisbon"}}] and not parsed.errors
    assert as_client_reads("", [_call("{not json")]).errors  # arguments that are not a JSON object


def test_a_round_of_right_answers_is_healthy(items: list[suites.Item]) -> None:
    answers = {i.id: as_client_reads(None, [_call(i.ground_truth[0]["arguments"]["location"])], 0.1 * n)
               for n, i in enumerate(items) if i.expects_call}
    answers["probe_4"] = as_client_reads("You're welcome!", [], 0.5)
    health = summarize(score(items, answers))
    assert (health.accuracy, health.unparseable, health.schema_violation, health.call, health.no_call) == \
        (1.0, 0.0, 0.0, 1.0, 1.0)
    assert health.failed == 0 and health.latency_p95_s == 0.5
    assert line(health).startswith("accuracy 100%, unparseable 0%")


def test_calls_that_come_back_as_text_drive_the_unparseable_share_up_and_accuracy_down(items: list[suites.Item]) -> None:
    answers = {i.id: as_client_reads(MARKUP.replace("Lisbon", i.ground_truth[0]["arguments"]["location"]), [])
               for i in items if i.expects_call}
    answers["probe_4"] = as_client_reads(MARKUP, [])  # markup shown to a user who wanted no call
    records = score(items, answers)
    health = summarize(records)
    assert (health.accuracy, health.unparseable, health.call, health.no_call) == (0.0, 1.0, 0.0, 0.0)
    assert records[-1]["passed"] is False and records[-1]["reason"] == LEFT_IN_CONTENT


def test_schema_violations_and_unanswered_requests(items: list[suites.Item]) -> None:
    answers = {"probe_0": as_client_reads(None, [_call(42)]),  # location must be a string
               "probe_1": as_client_reads(None, [_call("Tokyo")]),
               "probe_4": Prediction(failure="request failed: APIConnectionError")}
    health = summarize(score(items, answers))
    assert health.answered == 2 and health.failed == pytest.approx(0.6)
    assert health.accuracy == pytest.approx(1 / 5)  # unanswered requests count wrong
    assert health.schema_violation == 0.5 and health.call == 1.0
    assert health.no_call is None  # the only no-call request got no answer: nothing measured, not "healthy"


def test_the_probe_set_comes_from_suites_and_the_users_file_and_an_unusable_one_is_refused(tmp_path: Path) -> None:
    got = items_of(ProbeOptions(endpoint="http://e/v1", model="m", suite=("seed-tools:3",), data=str(FIXTURE)))
    assert [i.suite for i in got] == ["seed-tools"] * 3 + ["probe"] * 5
    with pytest.raises(suites.SuiteError, match="does not exist"):
        items_of(ProbeOptions(endpoint="http://e/v1", model="m", data=str(tmp_path / "none.jsonl")))
    bad = tmp_path / "bad.jsonl"
    for text in ('{"messages": "no"}', '{"text": "neither shape"}', "[1, 2]", '{"prompt": "p", "tools": [1]}'):
        bad.write_text(text + "\n")
        with pytest.raises(suites.SuiteError, match="line 1"):
            items_of(ProbeOptions(endpoint="http://e/v1", model="m", data=str(bad)))
    with pytest.raises(suites.SuiteError, match="--data"):
        items_of(ProbeOptions(endpoint="http://e/v1", model="m", suite=("heldout",)))
    with pytest.raises(ValueError, match="--suite or --data"):
        ProbeOptions(endpoint="http://e/v1", model="m").validate()


def test_a_call_under_other_markup_is_a_call_as_text(items: list[suites.Item]) -> None:
    """A template that teaches other tags than the parser reads: the reply has no `<tool_call>`, only the call."""
    other = MARKUP.replace("tool_call>", "function_call>")
    assert call_in_text(other, {"get_weather"}) and not call_in_text(other, {"send_email"})
    assert not call_in_text('I think {"name": "x"} and {broken', {"get_weather"})
    answers = {i.id: as_client_reads(other, []) for i in items}
    records = score(items, answers)
    assert all(CALL_AS_TEXT in r["reason"] and not r["passed"] for r in records)
    assert summarize(records).unparseable == 1.0
    prose = score(items[-1:], {"probe_4": as_client_reads("The weather in Paris is sunny.", [])})
    assert prose[0]["passed"] and not prose[0]["unparseable"]


def test_a_users_set_may_be_in_bfcls_or_seed_tools_shape(tmp_path: Path) -> None:
    """The two shapes our suites come in, as a user's own set: scored by BFCL's rules, like the suites."""
    bfcl_row = {"id": "mine_0", "question": [[{"role": "user", "content": "Area of a circle of radius 3?"}]],
                "function": [{"name": "geometry.circle_area", "description": "Area.", "parameters": {
                    "type": "dict", "properties": {"radius": {"type": "integer"}}, "required": ["radius"]}}],
                "ground_truth": [{"geometry.circle_area": {"radius": [3]}}]}
    seed_row = {"id": "mine_1", "category": "no_call", "prompt": "Thanks!", "ground_truth": [],
                "tools": suites.seed_tools()}
    data = tmp_path / "mine.jsonl"
    data.write_text(json.dumps(bfcl_row) + "\n" + json.dumps(seed_row) + "\n")
    bfcl_item, seed_item = items_of(ProbeOptions(endpoint="http://e/v1", model="m", data=str(data)))
    assert bfcl_item.tools[0]["function"]["name"] == "geometry_circle_area" and bfcl_item.expects_call
    assert seed_item.category == "no_call" and not seed_item.expects_call
    call = {"type": "function", "function": {"name": "geometry_circle_area", "arguments": '{"radius": 3}'}}
    records = score([bfcl_item, seed_item], {"mine_0": as_client_reads(None, [call]),
                                             "mine_1": as_client_reads("You're welcome!", [])})
    assert [r["passed"] for r in records] == [True, True]
