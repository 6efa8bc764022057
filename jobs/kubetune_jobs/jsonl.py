"""JSON Lines, the format of every row file the jobs exchange: the one reader and the one writer.

The reader never raises on a bad line: it yields the line's number with either the parsed value or a
`BadLine` saying why it is not JSON, and each caller decides what a bad line means (prepare counts it as
a dropped row, train and evaluate refuse the file naming the line). Blank lines are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BadLine:
    """A line that is not a JSON value (or not UTF-8)."""

    line: int
    error: str


def parse(lines: Iterable[bytes | str]) -> Iterator[tuple[int, Any]]:
    """(line number, value or BadLine) for each non-blank line."""
    loads = json.loads
    for number, raw in enumerate(lines, 1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, BadLine(number, f"invalid UTF-8 at byte {exc.start}")
                continue
        if not raw.strip():
            continue
        try:
            yield number, loads(raw)
        except json.JSONDecodeError as exc:
            yield number, BadLine(number, exc.msg)
        except RecursionError:
            yield number, BadLine(number, "nested too deeply")


def parse_bytes(data: bytes) -> Iterator[tuple[int, Any]]:
    return parse(data.split(b"\n"))


def dumps(rows: Iterable[Any], *, sort_keys: bool = False, compact: bool = True) -> bytes:
    """The bytes of a JSONL file, UTF-8 kept as is. `compact` drops the spaces after separators."""
    separators = (",", ":") if compact else (", ", ": ")
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=sort_keys, separators=separators) + "\n"
                   for r in rows).encode("utf-8")
