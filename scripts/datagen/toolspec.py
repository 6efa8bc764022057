"""How a catalogue tool is described: its parameters (type, draw, default, how a value reads), its
query templates, and the xlam-style schema a row offers."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REQUIRED = object()  # marks a parameter without a default


@dataclass(frozen=True)
class Param:
    type: str  # xlam's Python-style type, e.g. "int" or "List[str], optional"
    description: str
    draw: Callable[[random.Random], Any]
    default: Any = REQUIRED
    say: Callable[[Any], str] | None = None  # how the value reads inside a query

    @property
    def optional(self) -> bool:
        return self.default is not REQUIRED


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    params: dict[str, Param]
    # Query templates, lower-case first letter; `{param}` placeholders. Every template names all required
    # parameters; optional ones named by a template are set in that call's arguments.
    templates: tuple[str, ...]
    # Draws correlated values (e.g. two units of the same quantity) instead of the per-parameter draws.
    joint: Callable[[random.Random], dict[str, Any]] | None = None

    def schema(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for key, p in self.params.items():
            entry: dict[str, Any] = {"description": p.description, "type": p.type}
            if p.optional:
                entry["default"] = p.default
            params[key] = entry
        return {"name": self.name, "description": self.description, "parameters": params}
