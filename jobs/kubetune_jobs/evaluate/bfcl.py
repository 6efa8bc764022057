"""BFCL v4 test data, read from the `bfcl-eval` wheel's data files without importing its code.

`bfcl-eval` pins dependencies that clash with ours, so it is installed `--no-deps` and only its JSON
files are used: `data/BFCL_v4_<category>.json` (questions and function docs) and
`data/possible_answer/BFCL_v4_<category>.json` (ground truth). Function docs use BFCL's own type names;
models are shown JSON Schema, and names with dots (not allowed by OpenAI-style APIs) with underscores.
"""

from __future__ import annotations

import copy
import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

from .. import jsonl
from ..contract import suites

NON_LIVE, LIVE, CATEGORIES = suites.BFCL_NON_LIVE, suites.BFCL_LIVE, suites.BFCL_CATEGORIES

# BFCL type names that are not JSON Schema, and what a model is shown instead.
TYPE_TO_JSON_SCHEMA = {"dict": "object", "float": "number", "tuple": "array", "any": "string"}


class BFCLDataError(RuntimeError):
    """The BFCL data files are missing or a category is unknown."""


@cache
def data_dir() -> Path:
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise BFCLDataError("BFCL suites need the `bfcl-eval` data files: pip install --no-deps bfcl-eval")
    path = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not path.is_dir():
        raise BFCLDataError(f"bfcl-eval is installed but has no data directory at {path}")
    return path


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for lineno, row in jsonl.parse_bytes(path.read_bytes()):
        if isinstance(row, jsonl.BadLine):
            raise BFCLDataError(f"{path} line {lineno}: {row.error}")
        rows.append(row)
    return rows


def has_ground_truth(category: str) -> bool:
    return "irrelevance" not in category


@cache
def load(category: str) -> list[dict[str, Any]]:
    """Rows `{id, question, function, ground_truth}` of one category (ground truth `[]` for irrelevance)."""
    if category not in CATEGORIES:
        raise BFCLDataError(f"unknown BFCL category {category!r}; known: {', '.join(CATEGORIES)}")
    rows = _read_jsonl(data_dir() / f"BFCL_v4_{category}.json")
    answers: dict[str, Any] = {}
    if has_ground_truth(category):
        answers = {a["id"]: a["ground_truth"] for a in _read_jsonl(data_dir() / "possible_answer" / f"BFCL_v4_{category}.json")}
    for row in rows:
        row["ground_truth"] = answers.get(row["id"], [])
    return rows


def shown_name(name: str) -> str:
    """The name a model sees: OpenAI-style APIs accept only [a-zA-Z0-9_-] in function names."""
    return name.replace(".", "_")


def to_json_schema(schema: Any) -> Any:
    """A copy of a BFCL parameter schema with BFCL's type names turned into JSON Schema ones."""
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out[key] = TYPE_TO_JSON_SCHEMA.get(value, value)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = to_json_schema(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def to_openai_tool(function: dict[str, Any]) -> dict[str, Any]:
    """One BFCL function doc as an OpenAI `tools` entry."""
    return {
        "type": "function",
        "function": {
            "name": shown_name(function["name"]),
            "description": function.get("description", ""),
            "parameters": to_json_schema(function["parameters"]),
        },
    }
