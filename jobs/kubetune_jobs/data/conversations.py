"""Multi-turn training rows that share one tools block (`prepare --turns-per-row`).

The tools block is most of a function-calling row: each offered tool renders to ~110 tokens of JSON
schema, a request and its call to ~40. A single-turn row therefore pays for the whole block to teach
one decision. A conversation of several requests under the same tools teaches several decisions
(call this tool, call two, call none) for one block, which is what makes a small training budget go
further (docs/history.md, "The demo's tools stage").

A conversation is built around one converted call row (its tools are the conversation's tools):
- further call turns come from other call rows whose calls use only tools offered here, with the
  very same schemas, so every call stays valid against the block;
- no-call turns are chat exchanges whose request shares no word with the offered tools, and near
  misses: another row's tool request whose tools are not offered here, answered without a call
  (`Settings.hard_near_miss_share` of them share a word with an offered tool);
- `Settings.only_called_tools_share` of the conversations offer only the tools their founding row calls;
- `Settings.no_call_block_share` of the no-call turns form conversations of their own under one or two
  tools that fit none of their requests.
Turns are shuffled, so the first turn (what evaluation asks) is a call as often as in the whole mix.
Rows whose calls find no partner stay shorter conversations; nothing is dropped for lack of one.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

from . import convert

# How many candidates a no-call turn looks at before giving up on this conversation's tools.
_ATTEMPTS = 40


@dataclass(frozen=True)
class Settings:
    """How `group` mixes its conversations; the defaults are what `prepare` builds."""

    # Share of near misses whose request shares a word with an offered tool (the rest share none). Word
    # overlap alone must not decide a call: BFCL irrelevance offers a maths tool for another maths task.
    # The request still needs a tool not offered here, so this assumes tools with different names do
    # different things, as in our catalogue.
    hard_near_miss_share: float = 0.5
    # Share of conversations offering only the tools their founding row calls (often one). BFCL's
    # irrelevance category offers a single tool; the lone offered tool must not be called by default.
    only_called_tools_share: float = 0.3
    # Share of the no-call turns asked in conversations of their own, under one or two tools that none of
    # their requests can use. BFCL irrelevance offers a single tool that does not fit; inside a call
    # conversation that case is rare, since its block holds the tools its calls need. 0 builds none.
    no_call_block_share: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and 0 <= value <= 1):
                raise ValueError(f"conversations.Settings.{f.name} must be a number in [0, 1], got {value!r}")


DEFAULT = Settings()


def _called(row: dict[str, Any]) -> set[str]:
    return {c["function"]["name"] for c in row["messages"][-1].get("tool_calls") or []}


def _schemas(tools: list[dict[str, Any]]) -> dict[str, str]:
    return {t["function"]["name"]: json.dumps(t, sort_keys=True) for t in tools}


def _exchange(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The first user turn of a converted row and the assistant turn answering it."""
    messages = [m for m in row["messages"] if m["role"] != "system"]
    for i, m in enumerate(messages[:-1]):
        if m["role"] == "user" and messages[i + 1]["role"] == "assistant":
            return messages[i:i + 2]
    raise convert.Dropped("no_exchange")


class _Chats:
    """Chat exchanges handed out once each, skipping those whose request touches the offered tools."""

    def __init__(self, chats: list[dict[str, Any]]) -> None:
        self.pending = [_exchange(c) for c in chats if any(m["role"] == "assistant" for m in c["messages"])]

    def take(self, words: set[str]) -> list[dict[str, Any]] | None:
        for i, exchange in enumerate(self.pending[:_ATTEMPTS]):
            if not convert.content_words(exchange[0]["content"]) & words:
                return self.pending.pop(i)
        return None


def _near_miss(rows: list[dict[str, Any]], tools: list[dict[str, Any]], words: set[str],
               rng: random.Random, hard_share: float) -> tuple[list[dict[str, Any]], bool] | None:
    """Another row's request whose tools are not offered here, answered without a call; and whether
    the request shares a word with the offered tools."""
    offered = {t["function"]["name"] for t in tools}
    hard = rng.random() < hard_share
    chosen, overlaps = None, False
    for _ in range(_ATTEMPTS):
        row = rows[rng.randrange(len(rows))]
        if offered & {t["function"]["name"] for t in row["tools"]}:
            continue
        request = _exchange(row)[0]
        if bool(convert.content_words(request["content"]) & words) == hard:
            chosen, overlaps = request, hard
            break
        if chosen is None and hard:  # a plain near miss stands in when no hard one turns up
            chosen = request
    if chosen is None:
        return None
    return [chosen, {"role": "assistant", "content": convert.near_miss_answer(tools, rng)}], overlaps


def _partners(tools: list[dict[str, Any]], by_tool: dict[str, list[int]], called: list[set[str]],
              row_schemas: list[dict[str, str]], used: set[int], want: int) -> Iterator[int]:
    """Unused call rows whose calls all use one of `tools`, with the very same schema."""
    schemas = _schemas(tools)
    found = 0
    seen: set[int] = set()
    for name in schemas:
        for i in by_tool.get(name, ()):
            if found == want:
                return
            if i in used or i in seen:
                continue
            seen.add(i)
            if all(schemas.get(n) == row_schemas[i][n] for n in called[i]):
                found += 1
                yield i


def group(
    call_rows: list[dict[str, Any]], chats: list[dict[str, Any]], rng: random.Random, *,
    turns: int, no_call_fraction: float, near_miss_share: float, settings: Settings = DEFAULT,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Conversations of up to `turns` turns over `call_rows`, `no_call_fraction` of the turns without a call.

    `call_rows` are converted xlam rows (one request, its calls); `chats` converted chat rows, whose
    first exchange becomes a no-call turn; `settings` sets the rest of the mix. Returns the rows and
    counts for stats.json.
    """
    if turns < 2:
        raise ValueError("group() builds conversations of at least 2 turns")
    calls_per_conversation = max(1, round(turns * (1 - no_call_fraction)))
    # Worked out once per row: every conversation looks its candidates up here.
    called = [_called(row) for row in call_rows]
    row_schemas = [_schemas(row["tools"]) for row in call_rows]
    by_tool: dict[str, list[int]] = defaultdict(list)
    for i, names in enumerate(called):
        for name in names:
            by_tool[name].append(i)
    pool = _Chats(chats)
    used: set[int] = set()
    out: list[dict[str, Any]] = []
    counts = {"call": 0, "from_chat": 0, "near_miss": 0, "hard_near_miss": 0, "short_of_no_call": 0,
              "no_call_blocks": 0}
    ratio = no_call_fraction / (1 - no_call_fraction)

    def no_call_turn(tools: list[dict[str, Any]], words: set[str]) -> list[dict[str, Any]] | None:
        exchange = None
        if rng.random() >= near_miss_share:
            exchange = pool.take(words)
            kind = "from_chat"
        if exchange is None:
            found = _near_miss(call_rows, tools, words, rng, settings.hard_near_miss_share)
            if found is None:
                counts["short_of_no_call"] += 1
                return None
            exchange, hard = found
            kind = "near_miss"
            counts["hard_near_miss"] += hard
        counts[kind] += 1
        return exchange

    for a, anchor in enumerate(call_rows):
        if a in used:
            continue
        used.add(a)
        tools = anchor["tools"]
        if rng.random() < settings.only_called_tools_share:
            tools = [t for t in tools if t["function"]["name"] in called[a]]
        members = [a, *_partners(tools, by_tool, called, row_schemas, used, calls_per_conversation - 1)]
        used.update(members)
        exchanges = [_exchange(call_rows[i]) for i in members]
        counts["call"] += len(members)
        # Keep the running share of no-call turns at the target, whatever partners were found.
        no_calls = counts["from_chat"] + counts["near_miss"]
        want = round(counts["call"] * ratio * (1 - settings.no_call_block_share)) - no_calls
        want = max(0, min(want, turns - len(members)))
        words = set().union(*(convert.tool_words(t) for t in tools))
        exchanges += [ex for _ in range(want) if (ex := no_call_turn(tools, words)) is not None]
        rng.shuffle(exchanges)
        out.append(_conversation(anchor, tools, exchanges))
    # The rest of the no-call turns: conversations under one or two tools of a random row.
    left = round(counts["call"] * ratio) - counts["from_chat"] - counts["near_miss"]
    while settings.no_call_block_share and left > 0 and call_rows:
        anchor = call_rows[rng.randrange(len(call_rows))]
        tools = rng.sample(anchor["tools"], min(len(anchor["tools"]), rng.choice((1, 1, 2))))
        words = set().union(*(convert.tool_words(t) for t in tools))
        exchanges = [ex for _ in range(min(turns, left)) if (ex := no_call_turn(tools, words)) is not None]
        if not exchanges:
            break
        left -= len(exchanges)
        counts["no_call_blocks"] += 1
        out.append(_conversation(anchor, tools, exchanges))
    return out, counts


def _conversation(anchor: dict[str, Any], tools: list[dict[str, Any]],
                  exchanges: list[list[dict[str, Any]]]) -> dict[str, Any]:
    system = [m for m in anchor["messages"] if m["role"] == "system"]
    return {"messages": system + [m for ex in exchanges for m in ex], "tools": tools, "kind": "conversation"}
