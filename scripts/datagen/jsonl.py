"""The bytes of a JSONL file as the bundled sets are written: stable across runs and machines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def write_jsonl(rows: Sequence[dict[str, Any]]) -> bytes:
    """The bytes of a JSONL file: one sorted-key JSON object per line (stable across runs)."""
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
