"""Real vLLM (CPU build) serving the bundled SmolLM2 with our template and the hermes tool parser.

A 135M model decides little reliably, so the calls it must make are pinned by the request, not by the
model: with `tool_choice` naming a function or "required", vLLM constrains generation to the hermes
envelope (`<tool_call>{"name": ..., "arguments": ...}</tool_call>`, xgrammar structural tags) and, for
hermes, reads the result back with the hermes parser itself; `strict` tools whose only parameter
allows one value leave exactly one possible call. With `tool_choice` auto nothing is constrained;
after three earlier turns answered with calls the model writes call markup on its own, and each raw
generation (its token ids, detokenized by the server) read by our evaluator must give exactly the
server's reply.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kubetune_jobs.chat_template import render
from kubetune_jobs.evaluate.targets import from_message, from_text

pytestmark = pytest.mark.slow


def tool(name: str, param: str, only: str, *, strict: bool = True) -> dict:
    function = {"name": name, "description": f"{name.replace('_', ' ')} for a {param}.",
                "parameters": {"type": "object", "properties": {param: {"type": "string", "enum": [only]}},
                               "required": [param], "additionalProperties": False}}
    if strict:
        # Last: vLLM renders a tool's fields in its own order (name, description, parameters, strict), so
        # placed there our rendering of the tool is the same as the server's.
        function["strict"] = True
    return {"type": "function", "function": function}


WEATHER = tool("get_weather", "location", "Lisbon")
TIMER = tool("set_timer", "label", "tea")
ASK = [{"role": "user", "content": "What is the weather in Lisbon today?"}]


@pytest.fixture(scope="module")
def client(vllm_server):
    from openai import OpenAI

    return OpenAI(base_url=vllm_server.base_url, api_key="none", max_retries=0, timeout=300)


def calls_of(message) -> list[tuple[str, str]]:
    return [(tc.function.name, tc.function.arguments) for tc in message.tool_calls or []]


def test_named_tool_choice_returns_that_call(client, vllm_server) -> None:
    resp = client.chat.completions.create(
        model=vllm_server.model, messages=ASK, tools=[WEATHER, TIMER], temperature=0.0, max_tokens=64,
        tool_choice={"type": "function", "function": {"name": "get_weather"}}, parallel_tool_calls=False)
    message = resp.choices[0].message
    assert [(n, json.loads(a)) for n, a in calls_of(message)] == [("get_weather", {"location": "Lisbon"})]
    assert message.tool_calls[0].id and message.tool_calls[0].type == "function"


def test_required_tool_choice_returns_parsed_calls(client, vllm_server) -> None:
    resp = client.chat.completions.create(
        model=vllm_server.model, messages=ASK, tools=[WEATHER, TIMER], temperature=0.0, max_tokens=96,
        tool_choice="required", parallel_tool_calls=False)
    choice = resp.choices[0]
    calls = [(n, json.loads(a)) for n, a in calls_of(choice.message)]
    allowed = {("get_weather", '{"location": "Lisbon"}'), ("set_timer", '{"label": "tea"}')}
    assert len(calls) == 1 and (calls[0][0], json.dumps(calls[0][1])) in allowed, calls
    assert choice.finish_reason == "tool_calls"
    # What the evaluator makes of this reply: the same calls, none unparseable.
    pred = from_message(choice.message.content, [tc.model_dump() for tc in choice.message.tool_calls])
    assert pred.errors == [] and [(c["name"], c["arguments"]) for c in pred.calls] == calls


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def _earlier_calls() -> list[dict]:
    """Three earlier turns answered with a call each: with them a 135M model writes call markup."""
    turns = []
    for question, name, args in [("What is the weather in Paris?", "get_weather", {"location": "Paris"}),
                                 ("Set a timer for my eggs.", "set_timer", {"label": "eggs"}),
                                 ("What is the weather in Oslo?", "get_weather", {"location": "Oslo"})]:
        turns += [{"role": "user", "content": question},
                  {"role": "assistant", "content": "", "tool_calls": [
                      {"id": f"call_{len(turns)}", "type": "function", "function": {"name": name, "arguments": args}}]}]
    return turns


AUTO_CASES = {
    "plain question": [{"role": "user", "content": "What is the weather in Lisbon today?"}],
    "after calls, weather": _earlier_calls() + [{"role": "user", "content": "What is the weather in Lisbon?"}],
    "after calls, timer": _earlier_calls() + [{"role": "user", "content": "Set a timer for my tea."}],
    "after calls, joke": _earlier_calls() + [{"role": "user", "content": "Tell me a joke."}],
}


def test_auto_replies_are_what_our_evaluator_reads_from_the_raw_generation(client, vllm_server) -> None:
    """tool_choice auto, nothing constraining generation: the raw text of each generation (its token
    ids, detokenized by the server) read by our evaluator gives exactly the server's parsed reply, and
    the server rendered the very prompt our template renders (what LocalTarget and training use)."""
    tools = [tool("get_weather", "location", "Lisbon", strict=False), tool("set_timer", "label", "tea", strict=False)]
    with_markup = []
    for case, messages in AUTO_CASES.items():
        # The API takes arguments as JSON strings; our template (as training data) takes objects.
        wire = json.loads(json.dumps(messages))
        for message in wire:
            for call in message.get("tool_calls", []):
                call["function"]["arguments"] = json.dumps(call["function"]["arguments"])
        served_prompt = _post(vllm_server.root_url + "/tokenize", {
            "model": vllm_server.model, "messages": wire, "tools": tools, "add_generation_prompt": True})
        our_prompt = _post(vllm_server.root_url + "/tokenize", {
            "model": vllm_server.model, "add_special_tokens": False,
            "prompt": render({"messages": messages, "tools": tools}, add_generation_prompt=True)})
        assert served_prompt["tokens"] == our_prompt["tokens"], f"{case}: vLLM rendered another prompt"
        chat = client.chat.completions.create(model=vllm_server.model, messages=wire, tools=tools, temperature=0.0,
                                              max_tokens=64, extra_body={"return_token_ids": True})
        choice = chat.choices[0]
        raw = _post(vllm_server.root_url + "/detokenize",
                    {"model": vllm_server.model, "tokens": choice.model_extra["token_ids"]})["prompt"]
        ours = from_text(raw)
        served = from_message(choice.message.content, [tc.model_dump() for tc in choice.message.tool_calls or []])
        assert (ours.calls, ours.text, bool(ours.errors)) == (served.calls, served.text, bool(served.errors)), \
            f"{case}: {raw!r}"
        if "<tool_call>" in raw:
            with_markup.append(case)
            assert choice.finish_reason == "tool_calls" and served.calls, f"{case}: {raw!r}"
    # Otherwise only the no-call path was compared; the earlier calls make this model write markup.
    assert with_markup, "no generation wrote <tool_call> markup: the hermes parser was not exercised"
    print(f"auto: {len(AUTO_CASES)} generations agree, {len(with_markup)} with call markup ({with_markup})")


FAMILIES = {  # name (counters without `_total`, as the parser reports them) -> type
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:request_success": "counter",
}


def test_metrics_expose_the_vllm_families_we_chart(client, vllm_server) -> None:
    done = client.chat.completions.create(model=vllm_server.model, messages=ASK, temperature=0.0, max_tokens=8)
    assert done.usage.completion_tokens > 0
    text = urllib.request.urlopen(vllm_server.metrics_url, timeout=10).read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text) if f.name.startswith("vllm:")}
    missing = sorted(set(FAMILIES) - set(families))
    assert not missing, f"missing vllm families: {missing}"
    for name, kind in FAMILIES.items():
        fam = families[name]
        assert fam.type == kind, (name, fam.type)
        assert all(s.labels.get("model_name") == vllm_server.model for s in fam.samples), name

    def value(name: str, suffix: str = "", **labels: str) -> float:
        return sum(s.value for s in families[name].samples
                   if s.name == name + suffix and all(s.labels.get(k) == v for k, v in labels.items()))

    assert value("vllm:prompt_tokens", "_total") >= done.usage.prompt_tokens
    assert value("vllm:generation_tokens", "_total") >= done.usage.completion_tokens
    for hist in ("vllm:time_to_first_token_seconds", "vllm:e2e_request_latency_seconds"):
        assert value(hist, "_count") >= 1 and value(hist, "_sum") > 0, hist
    assert value("vllm:inter_token_latency_seconds", "_count") >= done.usage.completion_tokens - 1
    reasons = {s.labels["finished_reason"] for s in families["vllm:request_success"].samples}
    assert {"stop", "length"} <= reasons
    assert value("vllm:request_success", "_total", finished_reason=done.choices[0].finish_reason) >= 1
    assert 0 <= value("vllm:kv_cache_usage_perc") <= 1
    assert value("vllm:num_requests_running") >= 0 and value("vllm:num_requests_waiting") >= 0
