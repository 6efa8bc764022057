"""The bytes of a JSONL file as the bundled sets are written: stable across runs and machines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubetune_jobs import jsonl


def write_jsonl(rows: Sequence[dict[str, Any]]) -> bytes:
    """One sorted-key JSON object per line, with the spaced separators the bundled files have always had."""
    return jsonl.dumps(rows, sort_keys=True, compact=False)
