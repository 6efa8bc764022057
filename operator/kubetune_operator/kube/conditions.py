"""Conditions per Kubernetes API conventions: one entry per type, lastTransitionTime moves only when the
status flips, the whole list rewritten on every change (merge-patch replaces lists)."""

from __future__ import annotations

import datetime
from typing import Any

from ..apitypes import Condition

# Types in the order they are listed; types not named here follow.
ORDER = ("Succeeded", "Ready", "Progressing", "Degraded")
MESSAGE_MAX = 4000


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rank(type_: str) -> int:
    return ORDER.index(type_) if type_ in ORDER else len(ORDER)


def set_typed(conditions: list[Condition], type_: str, status: str, reason: str, message: str,
              generation: int | None, at: str | None = None) -> list[Condition]:
    """A new, complete conditions list with `type_` set."""
    old = find(conditions, type_)
    when = old.last_transition_time if old and old.status == status and old.last_transition_time else (at or now())
    cond = Condition(type=type_, status=status, reason=reason, message=message[:MESSAGE_MAX],
                     last_transition_time=when, observed_generation=generation)
    out = [c for c in conditions if c.type != type_] + [cond]
    return sorted(out, key=lambda c: _rank(c.type))


def find(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str,
                  generation: int | None, at: str | None = None) -> list[dict[str, Any]]:
    """`set_typed` on the wire form, for a status still assembled as dicts (ModelServe's)."""
    typed = [Condition.model_validate(c, by_alias=True, by_name=False) for c in conditions]
    return [c.wire() for c in set_typed(typed, type_, status, reason, message, generation, at)]


def condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)
