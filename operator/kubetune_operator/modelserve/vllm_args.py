"""What vLLM's api_server makes of an argv: which setting (argparse dest) each item writes, which items are the
values of which flag, which are bare positionals, and which its parser refuses. Pure.

The operator never imports vLLM: it reads the option table generated from vLLM's own parser
(assets/vllm-args.json, written by scripts/vllm_args.py) and follows, in order, what that parser does with an
argv. First vLLM's FlexibleArgumentParser rewrites it: underscores in a flag's name read as dashes, `-O3` is
`--optimization-level 3`, `--help=x` is `--help`, and dotted items (`--flag.key value`, `--flag.key=value`)
are merged into one `--flag JSON` at the end. Then argparse reads each item as an option or a value: an exact
option string, `--flag=value`, a unique prefix of a long option (allow_abbrev: `--ho` is `--host`), a short
option glued to its value (`-tp4`), a negative number or an item with a space as a value; each flag takes
the values its nargs allows from the items after it, and what no flag takes is a positional.
tests/integration/test_vllm_args.py checks this against the real parser, item for item.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from ..apitypes import shown

TABLE = ("assets", "vllm-args.json")
_LISTED = 6  # options an ambiguity message names


@cache
def table() -> dict[str, Any]:
    """The generated table (vLLM's version, argparse settings, and every option string's dest and nargs)."""
    text = resources.files("kubetune_operator").joinpath(*TABLE).read_text(encoding="utf-8")
    return json.loads(text)


def option(name: str) -> dict[str, Any]:
    """An option string's entry (dest, nargs, action); KeyError when vLLM has no such option string."""
    return table()["options"][name]


def dest(name: str) -> str:
    return option(name)["dest"]


@cache
def long_option(dest_name: str) -> str:
    """The option string a message names a setting by: its first long, positive form."""
    names = [o for o, e in table()["options"].items() if e["dest"] == dest_name]
    return min(names, key=lambda o: (not o.startswith("--"), "negates" in option(o), len(o)))


@dataclass(frozen=True)
class Use:
    """One setting an argv writes."""

    dest: str
    option: str  # the option string vLLM resolved the flag to (`--host` for `--ho`)
    given: str  # the flag as written, up to any `=` (never its value)
    flag: int  # the argv item naming the flag
    values: tuple[int, ...] = ()  # the later items read as its values (an `=value` is the flag item's own)


@dataclass(frozen=True)
class Refusal:
    """An item vLLM's parser would refuse (it exits before serving)."""

    index: int
    reason: str


@dataclass
class Reading:
    """An argv as vLLM's parser reads it, in terms of the argv's own items."""

    uses: list[Use] = field(default_factory=list)
    positionals: list[int] = field(default_factory=list)  # items no flag takes: the model_tag, then errors
    refusals: list[Refusal] = field(default_factory=list)


@dataclass(frozen=True)
class _Item:
    text: str
    sources: tuple[int, ...]  # the argv items it was made from (a merged dotted flag has several)


class _Refused(Exception):
    def __init__(self, sources: tuple[int, ...], reason: str) -> None:
        super().__init__(reason)
        self.sources, self.reason = sources, reason


def _name_dashes(flag: str) -> str:
    """`--max_num_seqs` -> `--max-num-seqs`: underscores read as dashes in the name, up to the first '.'."""
    name, dot, rest = flag[2:].partition(".")
    return "--" + name.replace("_", "-") + dot + rest


def _rewrite(argv: list[str]) -> list[_Item]:
    """FlexibleArgumentParser.parse_args's rewriting of the argv, before argparse sees it."""
    items: list[_Item] = []
    for i, arg in enumerate(argv):
        if arg.startswith("--help="):
            items.append(_Item("--help", (i,)))
        elif arg.startswith("--"):
            key, eq, value = arg.partition("=")
            items.append(_Item(_name_dashes(key) + eq + value, (i,)))
        elif arg.startswith("-O") and arg != "-O":
            items += [_Item("--optimization-level", (i,)), _Item(arg[3:] if arg[2] == "=" else arg[2:], (i,))]
        elif arg == "-O" and i + 1 < len(argv) and argv[i + 1] in {"0", "1", "2", "3"}:
            items.append(_Item("--optimization-level", (i,)))
        else:
            items.append(_Item(arg, (i,)))
    # Dotted items set one key of a JSON flag; all of one flag's are merged into `--flag JSON`, appended.
    merged: dict[str, tuple[int, ...]] = {}
    taken: set[int] = set()
    for i, item in enumerate(items):
        text = item.text
        if i in taken or not text.startswith("-") or "." not in text:
            continue
        key = text.split("=", 1)[0]
        if "." not in key:
            continue  # the '.' is in the value
        sources = item.sources
        if "=" not in text:
            if i + 1 >= len(items):
                raise _Refused(sources, f"{shown(key)} needs a value after it")
            sources += items[i + 1].sources
            taken.add(i + 1)
        taken.add(i)
        flag = key.removesuffix("+").split(".", 1)[0]
        merged[flag] = merged.get(flag, ()) + sources
    out = [item for i, item in enumerate(items) if i not in taken]
    for flag, sources in merged.items():
        out += [_Item(flag, sources), _Item("{}", sources)]
    return out


def _parse_optional(text: str) -> tuple[str | None, str | None, str] | None:
    """argparse's reading of one item: None for a value, else (the option string, or None when vLLM has no
    such option; the value glued to it or given after `=`, if any; the flag as written, without its value).
    Raises _Refused for an ambiguous abbreviation."""
    t = table()
    options, chars = t["options"], t["prefix_chars"]
    if not text or text[0] not in chars:
        return None
    if text in options:
        return text, None, text
    if len(text) == 1:
        return None
    head, eq, explicit = text.partition("=")
    if eq and head in options:
        return head, explicit, head
    found: list[tuple[str, str | None, str]] = []
    if t["allow_abbrev"] and text[1] in chars:
        found = [(o, explicit if eq else None, head) for o in options if o.startswith(head)]
    elif text[1] not in chars:  # a short option may be glued to its value; a longer one-dash option abbreviated
        for o in options:
            if o == text[:2]:
                found.append((o, text[2:], text[:2]))
            elif o.startswith(text):
                found.append((o, None, text))
    if len(found) > 1:
        names = [o for o, _, _ in found]
        listed = ", ".join(names[:_LISTED]) + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")
        raise _Refused((), f"{shown(found[0][2])} is an ambiguous abbreviation ({listed})")
    if found:
        return found[0]
    if re.match(t["negative_number"], text) and not t["negative_number_options"]:
        return None
    if " " in text:
        return None
    return None, None, head


def _nargs_pattern(nargs: Any) -> str:
    """argparse's pattern of the values a flag takes, over the letters of `read` (a flag never takes `--`)."""
    return {None: "A", "?": "A?", "*": "A*", "+": "A+"}.get(nargs) or "A" * nargs


def read(argv: list[str]) -> Reading:
    """What vLLM's parser does with each item of `argv`."""
    out = Reading()
    try:
        items = _rewrite(argv)
    except _Refused as exc:
        out.refusals.append(Refusal(exc.sources[0], exc.reason))
        return out
    chars, options = table()["prefix_chars"], table()["options"]
    # Each item as argparse reads it: a flag (O), a value (A), the first `--` (-, after which all are values),
    # or one it refuses outright (an ambiguous abbreviation: X).
    parsed: list[tuple[str | None, str | None, str] | None] = []
    letters = ""
    for item in items:
        reading = None
        if "-" in letters:
            letter = "A"
        elif item.text == "--":
            letter = "-"
        else:
            try:
                reading = _parse_optional(item.text)
                letter = "A" if reading is None else "O"
            except _Refused as exc:
                out.refusals.append(Refusal(item.sources[0], exc.reason))
                letter = "X"
        parsed.append(reading)
        letters += letter
    i = 0
    while i < len(items):
        item, reading, letter = items[i], parsed[i], letters[i]
        i += 1
        if letter == "A":
            out.positionals.append(item.sources[0])
        if letter != "O" or reading is None:
            continue
        name, explicit, given = reading
        if name is None:
            out.refusals.append(Refusal(item.sources[0], f"{shown(given)} is not an option of vLLM's api_server"))
            continue
        while explicit is not None and options[name]["nargs"] == 0:
            # A one-dash switch glued to more one-letter flags (`-ab`): argparse reads each in turn.
            if name[1] in chars or explicit == "" or f"{name[0]}{explicit[0]}" not in options:
                out.refusals.append(Refusal(item.sources[0], f"{shown(given)} takes no value ({name} is a switch)"))
                name = None
                break
            out.uses.append(Use(dest(name), name, given, item.sources[0]))
            name, explicit = f"{name[0]}{explicit[0]}", explicit[1:] or None
        if name is None:
            continue
        nargs = options[name]["nargs"]
        if explicit is not None:  # the glued or `=` value is the flag's one value
            if re.fullmatch(_nargs_pattern(nargs), "A"):
                out.uses.append(Use(dest(name), name, given, item.sources[0]))
            else:
                out.refusals.append(Refusal(item.sources[0], f"{shown(given)} takes {nargs} separate values"))
            continue
        taken = re.match(_nargs_pattern(nargs), letters[i:])
        if taken is None:
            out.refusals.append(Refusal(item.sources[0], f"{shown(given)} needs a value after it"))
            taken = re.match("A*", letters[i:])  # vLLM stops here: what follows is not a positional either
        count = taken.end()
        values = tuple(s for it in items[i:i + count] for s in it.sources if s != item.sources[0])
        out.uses.append(Use(dest(name), name, given, item.sources[0], values))
        i += count
    return out
