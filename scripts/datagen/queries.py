"""A tool request as a user writes it: a template filled with drawn values, the call answering it, and
several requests joined into one query."""

from __future__ import annotations

import random
import string
from functools import cache
from typing import Any

from .catalogue import SILENT_BOOLS
from .toolspec import Tool
from .values import and_list

# Several requests, one sentence each.
JOINERS = ("{a} Also, {b}", "{a} And {b}", "{a} Then {b}", "{a} After that, {b}", "{a} Next, {b}")
# Requests joined inside one sentence ("check the weather in Madrid and get the price of TSLA").
IN_SENTENCE = ("{a} and {b}", "{a}, and {b}", "{a} and also {b}", "{a}, then {b}")
PREFIXES = ("", "", "", "", "Hey, ", "Hi! ", "Quick one: ", "Could you help? ", "Please help: ")


@cache
def fields(template: str) -> frozenset[str]:
    return frozenset(f for _, f, _, _ in string.Formatter().parse(template) if f)


def say(tool: Tool, key: str, value: Any) -> str:
    if (tool.name, key) in SILENT_BOOLS:
        return ""
    p = tool.params[key]
    if p.say is not None:
        return p.say(value)
    return str(value)


def call(tool: Tool, rng: random.Random) -> tuple[str, dict[str, Any]]:
    """One query sentence (lower-case first letter) and the call that answers it."""
    template = rng.choice(tool.templates)
    named = fields(template)
    values = {k: p.draw(rng) for k, p in tool.params.items() if k in named or not p.optional}
    if tool.joint is not None:
        values.update(tool.joint(rng))
    text = template.format(**{k: say(tool, k, values[k]) for k in named})
    return text, arguments(tool, named, values)


def arguments(tool: Tool, named: frozenset[str], values: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments: the required parameters and the optional ones the query names."""
    return {k: values[k] for k in tool.params if k in named or not tool.params[k].optional}


def listed(tool: Tool, rng: random.Random, n: int) -> tuple[str, list[dict[str, Any]]] | None:
    """One sentence asking for `n` calls of `tool` that differ in one listed value ("... in Oslo, Rome
    and Lima"), or None when the drawn template has no short plain value to list."""
    if tool.joint is not None:
        return None
    template = rng.choice(tool.templates)
    named = fields(template)
    values = {k: p.draw(rng) for k, p in tool.params.items() if k in named or not p.optional}
    keys = [k for k in sorted(named) if tool.params[k].say is None and (tool.name, k) not in SILENT_BOOLS
            and isinstance(values[k], str) and len(values[k].split()) <= 3]
    if not keys:
        return None
    key = rng.choice(keys)
    items = [values[key]]
    for _ in range(8 * n):
        if len(items) == n:
            break
        value = tool.params[key].draw(rng)
        if value not in items and len(value.split()) <= 3:
            items.append(value)
    if len(items) < n:
        return None
    text = template.format(**{k: and_list(items) if k == key else say(tool, k, values[k]) for k in named})
    args = arguments(tool, named, values)
    return text, [{**args, key: value} for value in items]
