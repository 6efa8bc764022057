"""Conditions per Kubernetes API conventions: one entry per type, lastTransitionTime moves only when the
status flips, the whole list rewritten on every change (merge-patch replaces lists)."""

from __future__ import annotations

import datetime
from typing import Any

# Types in the order they are listed; types not named here follow.
ORDER = ("Succeeded", "Ready", "Progressing", "Degraded")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str,
                  generation: int | None, at: str | None = None) -> list[dict[str, Any]]:
    """A new, complete conditions list with `type_` set."""
    out = [dict(c) for c in conditions if c.get("type") != type_]
    old = next((c for c in conditions if c.get("type") == type_), None)
    when = old["lastTransitionTime"] if old and old.get("status") == status and old.get(
        "lastTransitionTime") else (at or now())
    cond = {"type": type_, "status": status, "reason": reason, "message": message[:4000],
            "lastTransitionTime": when}
    if generation is not None:
        cond["observedGeneration"] = generation
    out.append(cond)
    return sorted(out, key=lambda c: ORDER.index(c["type"]) if c["type"] in ORDER else len(ORDER))


def condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)
