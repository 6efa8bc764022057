"""Source rows -> training rows in TRL's conversational format, one converter per source format.

A converter returns the training row, or raises `Dropped(reason, detail)`; reasons are stable
snake_case names counted in `stats.json`. JSON held in string fields (xlam's tools, answers and
arguments) is parsed as strictly as the source lines (`strict_json`). Assistant tool calls carry
`arguments` as dicts, never JSON strings (the template would encode a string twice).
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

from . import strict_json
from .schema import SchemaError, Tool, argument_problem, convert_tool

ROLES = ("user", "assistant")


class Dropped(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _system(system_prompt: str | None) -> list[dict[str, Any]]:
    return [{"role": "system", "content": system_prompt}] if system_prompt else []


def ultrachat(row: dict[str, Any], system_prompt: str | None = None) -> dict[str, Any]:
    """`{"messages": [user, assistant, ...]}` -> the same conversation, checked, with our system prompt."""
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Dropped("missing_messages")
    turns: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("content"), str):
            raise Dropped("malformed_message", f"message {i}")
        role = msg.get("role")
        if role == "system" and i == 0:
            if system_prompt is None:
                system_prompt = msg["content"]
            continue
        if not msg["content"].strip():
            raise Dropped("empty_message", f"message {i}")
        if role != ROLES[len(turns) % 2]:
            raise Dropped("roles_not_alternating", f"message {i} is {role!r}")
        turns.append({"role": role, "content": msg["content"]})
    if turns and turns[-1]["role"] == "user":
        turns.pop()  # a final question without its answer teaches nothing
    if not turns:
        raise Dropped("no_assistant_reply")
    return {"messages": _system(system_prompt) + turns, "tools": [], "kind": "chat"}


def _parse(text: str, name: str) -> Any:
    """JSON held in the string field `name`; a syntax error is `malformed_<name>_json`."""
    try:
        return strict_json.loads(text)
    except strict_json.InvalidJSON as exc:
        reason = f"malformed_{name}_json" if exc.reason == "malformed_json" else exc.reason
        raise Dropped(reason, f"{name}: {exc.detail}") from None


def _json_field(row: dict[str, Any], name: str) -> Any:
    value = row.get(name)
    if value is None:
        raise Dropped("missing_field", name)
    return _parse(value, name) if isinstance(value, str) else value


def _convert_tools(raw_tools: Any) -> tuple[Tool, ...]:
    if not isinstance(raw_tools, list) or not raw_tools:
        raise Dropped("malformed_tools_json", "not a non-empty list")
    try:
        return tuple(convert_tool(t) for t in raw_tools)
    except SchemaError as exc:
        raise Dropped("invalid_tool_schema", str(exc)) from exc


@lru_cache(maxsize=16384)
def _tools_from_json(text: str) -> tuple[Tool, ...]:
    # xlam rows repeat the same tool lists verbatim; parse and convert each distinct one once.
    return _convert_tools(_parse(text, "tools"))


def _tools(value: Any) -> tuple[Tool, ...]:
    if value is None:
        raise Dropped("missing_field", "tools")
    return _tools_from_json(value) if isinstance(value, str) else _convert_tools(value)


def xlam(row: dict[str, Any], system_prompt: str | None = None) -> dict[str, Any]:
    """`{"query", "tools": "<json>", "answers": "<json>"}` -> system + user + assistant tool calls."""
    query = row.get("query")
    if not isinstance(query, str):
        raise Dropped("missing_field", "query")
    if not query.strip():
        raise Dropped("empty_query")
    converted = _tools(row.get("tools"))
    answers = _json_field(row, "answers")
    if not isinstance(answers, list):
        raise Dropped("malformed_answers_json", "not a list")
    if not answers:
        raise Dropped("no_calls")
    by_name = {t.name: t for t in converted}
    calls = []
    for answer in answers:
        if not isinstance(answer, dict) or not isinstance(answer.get("name"), str):
            raise Dropped("malformed_answers_json", "a call has no name")
        tool = by_name.get(answer["name"])
        if tool is None:
            raise Dropped("unknown_tool", answer["name"])
        arguments = answer.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = strict_json.loads(arguments)
            except strict_json.InvalidJSON as exc:
                reason = "malformed_answers_json" if exc.reason == "malformed_json" else exc.reason
                raise Dropped(reason, f"{answer['name']}: arguments: {exc.detail}") from None
        problem = argument_problem(tool, arguments)
        if problem:
            raise Dropped(*problem)
        calls.append({"type": "function", "function": {"name": answer["name"], "arguments": arguments}})
    messages = _system(system_prompt) + [
        {"role": "user", "content": query},
        {"role": "assistant", "content": "", "tool_calls": calls},
    ]
    return {"messages": messages, "tools": [t.schema for t in converted], "kind": "call"}


CONVERTERS = {"ultrachat": ultrachat, "xlam": xlam}


def turn_kind(answer: dict[str, Any], tools_offered: bool) -> str:
    """What one assistant turn teaches: a call, no call although tools are offered, or plain chat."""
    return "call" if answer.get("tool_calls") else "no_call" if tools_offered else "chat"


def content_words(text: str) -> set[str]:
    """Lower-cased words longer than three letters: what decides whether a request touches a tool."""
    return {w for w in "".join(c.lower() if c.isalnum() else " " for c in text).split() if len(w) > 3}


def tool_words(tool: dict[str, Any]) -> set[str]:
    """Words of a tool's name and description: a request sharing one of them may be meant for it."""
    fn = tool["function"]
    return content_words(fn["name"].replace("_", " ") + " " + fn.get("description", ""))


# No-call rows offer 1-NO_CALL_MAX_TOOLS unrelated tools. Whether to call depends on the request, not on
# how many tools are listed, and each tool costs ~110 prompt tokens: on the quickstart, no-call rows with
# 1-2 tools taught the decision better per training second than rows with up to six (docs/history.md).
NO_CALL_MAX_TOOLS = 2


def _unrelated_tools(request: str, exclude: set[str], tool_pool: list[dict[str, Any]], rng: random.Random,
                     max_tools: int) -> list[dict[str, Any]]:
    words = content_words(request)
    chosen: list[dict[str, Any]] = []
    names = set(exclude)
    want = rng.randint(1, max_tools)
    for _ in range(want * 8):
        if len(chosen) == want or not tool_pool:
            break
        tool = tool_pool[rng.randrange(len(tool_pool))]
        name = tool["function"]["name"]
        if name in names or words & tool_words(tool):
            continue
        chosen.append(tool)
        names.add(name)
    if not chosen:
        raise Dropped("no_unrelated_tools")
    return chosen


NEAR_MISS_ANSWERS = (
    "None of the tools I have can do that: {names} {verb} meant for something else. "
    "If you can give me the details, I can try to help without a tool.",
    "I can't do this with the available tools: {names} {verb} not made for this request.",
    "There is no suitable tool for this request here ({names} {verb} unrelated), so I won't call one. "
    "Could you tell me more, or provide a tool that fits?",
)


def near_miss_answer(tools: list[dict[str, Any]], rng: random.Random) -> str:
    names = ", ".join(t["function"]["name"] for t in tools)
    return rng.choice(NEAR_MISS_ANSWERS).format(names=names, verb="is" if len(tools) == 1 else "are")


def near_miss(call_row: dict[str, Any], tool_pool: list[dict[str, Any]], rng: random.Random,
              max_tools: int = NO_CALL_MAX_TOOLS) -> dict[str, Any]:
    """A converted tool request offered only tools that cannot serve it, answered in text without a call."""
    user = next(m for m in call_row["messages"] if m["role"] == "user")
    needed = {t["function"]["name"] for t in call_row["tools"]}
    tools = _unrelated_tools(user["content"], needed, tool_pool, rng, max_tools)
    answer = near_miss_answer(tools, rng)
    system = [m for m in call_row["messages"] if m["role"] == "system"]
    messages = [*system, user, {"role": "assistant", "content": answer}]
    return {"messages": messages, "tools": tools, "kind": "no_call"}


def no_call(
    chat_row: dict[str, Any], tool_pool: list[dict[str, Any]], rng: random.Random,
    max_tools: int = NO_CALL_MAX_TOOLS,
) -> dict[str, Any]:
    """A converted chat row offered tools that do not fit it; the plain-text answer stays the target.

    Tools whose name or description shares a word with the user's request are not offered, so the
    right behaviour really is to answer without calling.
    """
    request = " ".join(m["content"] for m in chat_row["messages"] if m["role"] == "user")
    chosen = _unrelated_tools(request, set(), tool_pool, rng, max_tools)
    return {"messages": chat_row["messages"], "tools": chosen, "kind": "no_call"}
