"""The evaluation suites: named lists of items, each a prompt, the tools offered and what counts as right.

  * `bfcl-<category>` — BFCL v4 (see `bfcl`), scored with BFCL's AST rules;
  * `seed-tools` — the origin document's seven tools with our prompts (assets/seed_tools.json);
  * `heldout` — call / no-call rows of the `eval.jsonl` written by `prepare`, scored by exact calls;
  * `chat` — chat rows of that split: loss/perplexity of the assistant turns, optional judge win rate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from .. import jsonl, storage
from ..chat_template import assistant_calls
from ..contract import suites as names
from ..contract.layout import EVAL_FILE
from ..data import convert
from . import bfcl

SEED_SUITE = names.SEED_TOOLS
HELDOUT_SUITE = names.HELDOUT
CHAT_SUITE = names.CHAT
BFCL_PREFIX = names.BFCL_PREFIX
KNOWN = list(names.KNOWN)

# How an item is scored.
AST = "ast"  # BFCL acceptable-answer matching (checker.check)
EXACT = "exact"  # same calls with equal arguments (checker.exact_match)
CHAT = "chat"  # no pass/fail: loss on the reference answer, optional judge


class SuiteError(ValueError):
    """An unknown suite, or one whose data is missing or malformed."""


@dataclass
class Item:
    id: str
    suite: str
    category: str
    messages: list[dict[str, Any]]  # the prompt, ending with a user turn
    tools: list[dict[str, Any]]  # OpenAI `tools` shown to the model
    functions: list[dict[str, Any]] = field(default_factory=list)  # docs the checker reads (original names)
    ground_truth: list[Any] = field(default_factory=list)  # BFCL answers (AST) or expected calls (EXACT)
    scoring: str = AST
    name_map: dict[str, str] = field(default_factory=dict)  # shown name -> documented name
    reference: str | None = None  # chat: the held-out assistant answer
    row: dict[str, Any] | None = None  # chat: the full conversation (for the loss)

    @property
    def expects_call(self) -> bool:
        return self.scoring != CHAT and bool(self.ground_truth)

    def original_name(self, name: str) -> str:
        return self.name_map.get(name, name)


def validate(specs: list[str] | tuple[str, ...], default_limit: int | None = None) -> dict[str, int | None]:
    """`--suite NAME` or `NAME:N` (its first N items) -> {name: limit} in order, deduplicated (the last
    spec of a name wins); an unknown name is an error naming the known ones. A suite without its own
    N takes `default_limit` (`--limit`)."""
    if not specs:
        raise SuiteError(f"no --suite given; known suites: {', '.join(KNOWN)}")
    out: dict[str, int | None] = {}
    for spec in specs:
        try:
            name, limit = names.parse_suite_arg(spec)
        except names.SuiteArgError as exc:
            raise SuiteError(str(exc)) from None
        out[name] = limit if limit is not None else default_limit
    return out


def load(name: str, *, data: str | list[str] | None = None, limit: int | None = None) -> list[Item]:
    if name.startswith(BFCL_PREFIX):
        items = bfcl_items(name[len(BFCL_PREFIX):])
    elif name == SEED_SUITE:
        items = seed_items()
    elif name in (HELDOUT_SUITE, CHAT_SUITE):
        items = heldout_items(data, chat=name == CHAT_SUITE)
    else:
        raise SuiteError(f"unknown suite {name!r}; known suites: {', '.join(KNOWN)}")
    return items[:limit] if limit is not None else items


def bfcl_items(category: str) -> list[Item]:
    suite = f"{BFCL_PREFIX}{category}"
    items = []
    for row in bfcl.load(category):
        items.append(_bfcl_item(row, suite, category))
    return items


def _bfcl_item(row: dict[str, Any], suite: str, category: str) -> Item:
    # Every BFCL category here is single-turn; a question is the list of that turn's messages.
    messages = [m for turn in row["question"] for m in turn]
    return Item(id=row["id"], suite=suite, category=category, messages=messages,
                tools=[bfcl.to_openai_tool(f) for f in row["function"]],
                functions=row["function"], ground_truth=row["ground_truth"],
                name_map={bfcl.shown_name(f["name"]): f["name"] for f in row["function"]})


@cache
def _seed_data() -> dict[str, Any]:
    text = resources.files("kubetune_jobs").joinpath("assets", "seed_tools.json").read_text(encoding="utf-8")
    return json.loads(text)


def seed_tools() -> list[dict[str, Any]]:
    """The seven tools of the origin document, as OpenAI function schemas."""
    return _seed_data()["tools"]


def seed_items() -> list[Item]:
    return [_seed_item(it, seed_tools(), SEED_SUITE) for it in _seed_data()["items"]]


def _seed_item(row: dict[str, Any], tools: list[dict[str, Any]], suite: str) -> Item:
    return Item(id=row["id"], suite=suite, category=row["category"], messages=[{"role": "user", "content": row["prompt"]}],
                tools=tools, functions=[t["function"] for t in tools], ground_truth=row["ground_truth"])


def _row_kind(row: dict[str, Any]) -> str:
    if row.get("kind") in ("call", "no_call", "chat"):
        return row["kind"]
    return convert.turn_kind(row["messages"][-1], bool(row.get("tools")))


def heldout_items(data: str | list[str] | None, *, chat: bool) -> list[Item]:
    """Held-out rows of one or more prepare outputs (a run's chat stage and tools stage, say)."""
    suite = CHAT_SUITE if chat else HELDOUT_SUITE
    dirs = [data] if isinstance(data, str) else list(data or [])
    if not dirs:
        raise SuiteError(f"the {suite} suite needs --data (the prepare output holding eval.jsonl)")
    items: list[Item] = []
    for i, directory in enumerate(dirs):
        # Ids stay those of a single --data, so reports of one-directory runs keep their item ids.
        items += _heldout_from(directory, suite, chat, prefix=suite if len(dirs) == 1 else f"{suite}_{i}")
    return items


def _heldout_from(data: str, suite: str, chat: bool, prefix: str) -> list[Item]:
    loc = storage.location(data).child(EVAL_FILE)
    if not loc.exists():
        raise SuiteError(f"{loc} does not exist (the {suite} suite reads prepare's eval.jsonl)")
    return _conversation_items(loc, suite, chat, prefix)


def file_items(uri: str, suite: str) -> list[Item]:
    """A user's own call and no-call items, one JSON object per line, in any of three shapes: prepare's rows
    (`messages` ending with the expected assistant turn, `tools`; scored by exact calls), BFCL's (`id`,
    `question`, `function`, `ground_truth`) or seed-tools' (`id`, `category`, `prompt`, `ground_truth`, and the
    OpenAI `tools` offered), both scored by BFCL's rules. A line in none of them is an error naming it."""
    loc = storage.location(uri)
    if not loc.exists():
        raise SuiteError(f"{uri} does not exist")
    items = []
    for lineno, row in jsonl.parse_bytes(loc.read_bytes()):
        where = f"{uri} line {lineno}"
        if not isinstance(row, dict):
            raise SuiteError(f"{where}: not a JSON object ({row.error if isinstance(row, jsonl.BadLine) else row!r})")
        try:
            if "messages" in row:
                item = _conversation_item(row, suite, False, f"{suite}_{lineno - 1}", where)
            elif "question" in row and "function" in row:
                item = _bfcl_item(row, suite, str(row.get("category") or suite))
            elif "prompt" in row and "tools" in row:
                item = _seed_item({"category": suite, **row}, row["tools"], suite)
            else:
                raise SuiteError(f"{where}: not a row in prepare's, BFCL's or seed-tools' shape")
        except (KeyError, TypeError, AttributeError) as exc:
            raise SuiteError(f"{where}: {type(exc).__name__}: {exc}") from None
        if item is not None:
            items.append(item)
    return items


def _conversation_items(loc: Any, suite: str, chat: bool, prefix: str) -> list[Item]:
    items = []
    for lineno, row in jsonl.parse_bytes(loc.read_bytes()):
        messages = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(messages, list):
            why = row.error if isinstance(row, jsonl.BadLine) else "no 'messages' list"
            raise SuiteError(f"{loc} line {lineno}: not a conversational row ({why})")
        item = _conversation_item(row, suite, chat, f"{prefix}_{lineno - 1}", f"{loc} line {lineno}")
        if item is not None:
            items.append(item)
    return items


def _conversation_item(row: dict[str, Any], suite: str, chat: bool, item_id: str, where: str) -> Item | None:
    """The row's last assistant turn is the expected answer, everything before it the prompt; None for a row of
    the other kind (chat or tools) or without an assistant turn."""
    messages = row["messages"]
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise SuiteError(f"{where}: 'messages' is not a list of messages")
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    if last is None:
        return None
    kind = _row_kind(row)
    if (kind == "chat") != chat:
        return None
    prompt = messages[:last]
    if chat:
        return Item(id=item_id, suite=suite, category="chat", messages=prompt, tools=[], scoring=CHAT,
                    reference=messages[last].get("content") or "", row={"messages": messages[: last + 1]})
    return Item(id=item_id, suite=suite, category=kind, messages=prompt, tools=row.get("tools") or [],
                functions=[t["function"] for t in row.get("tools") or []],
                ground_truth=assistant_calls(messages[last]), scoring=EXACT)
