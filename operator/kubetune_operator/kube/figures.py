"""Figures read from a store (a loss, a throughput, an accuracy) as a status may hold them. Pure.

JSON has no NaN or Infinity: an API server refuses a status write holding one, whole, and would refuse every
later write of the same figure, so one bad record would freeze the resource's status. A figure that is not a
finite number is left out instead (and a gate on it fails)."""

from __future__ import annotations

import math
from typing import Any


def figure(value: Any) -> float | None:
    """A number as a status may hold it: finite, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return value


def share(value: Any) -> float | None:
    """A share (an accuracy, a rate): a finite number within [0, 1], else None."""
    found = figure(value)
    return found if found is not None and 0.0 <= found <= 1.0 else None
