"""Other spellings of a catalogue tool: camelCase names and parameters, another verb, or both.

Spelling 0 is the catalogue's; a row draws one spelling for all the tools it offers, so rows of one
spelling can still share a conversation (conversations need identical schemas).
"""

from __future__ import annotations

import json
from functools import cache

from .catalogue import SCHEMAS

VERBS = {"get": "fetch", "convert": "transform", "solve": "compute", "summarize": "describe", "check": "verify",
         "create": "add", "list": "show", "find": "lookup", "read": "open", "search": "lookup",
         "compress": "archive", "place": "submit", "cancel": "void", "track": "trace", "transfer": "move",
         "send": "dispatch", "post": "publish", "play": "stream", "scale": "resize", "set": "add",
         "start": "begin", "count": "tally", "update": "edit", "generate": "make", "reserve": "book"}
SPELLINGS = 4  # catalogue, camelCase, other verb, both


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def respell(snake: str, spelling: int, is_name: bool) -> str:
    if is_name and spelling in (2, 3):
        verb, _, rest = snake.partition("_")
        snake = f"{VERBS.get(verb, verb)}_{rest}" if rest else snake
    return camel(snake) if spelling in (1, 3) else snake


@cache
def spelled(name: str, spelling: int) -> tuple[str, dict[str, str], str]:
    """A catalogue tool in one spelling: its name, catalogue parameter -> spelled parameter, schema JSON."""
    schema = SCHEMAS[name]
    keys = {k: respell(k, spelling, is_name=False) for k in schema["parameters"]}
    tool = {**schema, "name": respell(name, spelling, is_name=True),
            "parameters": {keys[k]: v for k, v in schema["parameters"].items()}}
    return tool["name"], keys, json.dumps(tool, ensure_ascii=False)
