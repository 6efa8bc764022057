"""Tool schemas: xlam's Python-style parameter types to JSON Schema, and argument validation.

xlam-function-calling-60k describes parameters as `{name: {description, type, default}}` with types
written as Python annotations (`str`, `List[int]`, `Dict[str, Any]`, `Tuple[float, float]`,
`Optional[str]`, `int, optional`, ...). Models are shown OpenAI function schemas, so each tool is
converted once; tools already in JSON Schema pass through unchanged.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

_SCALARS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"}, "string": {"type": "string"}, "bytes": {"type": "string"},
    "int": {"type": "integer"}, "integer": {"type": "integer"},
    "float": {"type": "number"}, "number": {"type": "number"}, "decimal": {"type": "number"},
    "bool": {"type": "boolean"}, "boolean": {"type": "boolean"},
    "none": {"type": "null"}, "nonetype": {"type": "null"},
    "list": {"type": "array"}, "array": {"type": "array"}, "tuple": {"type": "array"},
    "set": {"type": "array", "uniqueItems": True},
    "dict": {"type": "object"}, "object": {"type": "object"}, "mapping": {"type": "object"},
    "any": {}, "object_": {},
    # A callable cannot travel as JSON; callers pass its name.
    "callable": {"type": "string"}, "function": {"type": "string"},
    "date": {"type": "string", "format": "date"}, "datetime": {"type": "string", "format": "date-time"},
}
_OPTIONAL = re.compile(r",\s*(optional|default\b.*)$", re.IGNORECASE)


class SchemaError(ValueError):
    """A tool description that cannot be turned into a JSON Schema."""


def _split_args(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def python_type_to_schema(annotation: str) -> dict[str, Any]:
    """`List[Dict[str, int]]` -> `{"type": "array", "items": {"type": "object", ...}}`."""
    text = annotation.strip()
    if "|" in text and "[" not in text:
        return _union([p.strip() for p in text.split("|")])
    match = re.fullmatch(r"([\w.]+)\s*(?:\[(.*)\])?", text, re.DOTALL)
    if not match:
        raise SchemaError(f"unreadable type {annotation!r}")
    head = match.group(1).rsplit(".", 1)[-1].lower()
    args = _split_args(match.group(2)) if match.group(2) is not None else []
    if head == "optional" and len(args) == 1:
        return python_type_to_schema(args[0])
    if head == "union":
        return _union(args)
    if head == "literal":
        return {"enum": [json.loads(a.replace("'", '"')) for a in args]}
    if head not in _SCALARS:
        raise SchemaError(f"unknown type {annotation!r}")
    schema = dict(_SCALARS[head])
    if head in ("list", "set", "array") and args:
        schema["items"] = python_type_to_schema(args[0])
    elif head == "tuple" and args:
        if len(args) == 2 and args[1] == "...":
            schema["items"] = python_type_to_schema(args[0])
        else:
            items = [python_type_to_schema(a) for a in args]
            schema["prefixItems"] = items
            schema["minItems"] = schema["maxItems"] = len(items)
    elif head in ("dict", "mapping") and len(args) == 2:
        value = python_type_to_schema(args[1])
        if value:
            schema["additionalProperties"] = value
    return schema


def _union(args: list[str]) -> dict[str, Any]:
    options = [python_type_to_schema(a) for a in args if a.lower() not in ("none", "nonetype")]
    if len(options) == 1:
        return options[0]
    return {"anyOf": options}


def is_json_schema_tool(tool: dict[str, Any]) -> bool:
    fn = tool.get("function", tool)
    params = fn.get("parameters")
    return isinstance(params, dict) and params.get("type") == "object" and isinstance(
        params.get("properties", {}), dict
    )


def to_openai_tool(tool: Any) -> dict[str, Any]:
    """An xlam (or JSON Schema) tool as `{"type": "function", "function": {name, description, parameters}}`."""
    if not isinstance(tool, dict):
        raise SchemaError("tool is not an object")
    if is_json_schema_tool(tool):
        fn = tool.get("function", tool)
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise SchemaError("tool has no name")
        return {"type": "function", "function": fn}
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise SchemaError("tool has no name")
    params = tool.get("parameters") or {}
    if not isinstance(params, dict):
        raise SchemaError(f"tool {name!r}: parameters are not an object")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for pname, spec in params.items():
        if not isinstance(spec, dict):
            raise SchemaError(f"tool {name!r}: parameter {pname!r} is not an object")
        type_text = str(spec.get("type", "Any"))
        optional = bool(_OPTIONAL.search(type_text))
        type_text = _OPTIONAL.sub("", type_text)
        if type_text.lower().startswith("optional["):
            optional = True
        try:
            prop = python_type_to_schema(type_text)
        except SchemaError as exc:
            raise SchemaError(f"tool {name!r}: parameter {pname!r}: {exc}") from exc
        if spec.get("description"):
            prop["description"] = str(spec["description"])
        if "default" in spec and spec["default"] not in (None, ""):
            prop["default"] = spec["default"]
        properties[pname] = prop
        if not optional:
            required.append(pname)
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": str(tool.get("description", "")),
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


@lru_cache(maxsize=65536)
def _validator(parameters_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(parameters_json))


def argument_problem(tool: dict[str, Any], arguments: Any) -> tuple[str, str] | None:
    """Why `arguments` do not fit `tool` (an OpenAI tool), as `(reason, detail)`; None when they do."""
    fn = tool["function"]
    params = fn.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(arguments, dict):
        return "wrong_argument_type", f"{fn['name']}: arguments are not an object"
    properties = params.get("properties", {})
    for req in params.get("required", []):
        if req not in arguments:
            return "missing_required_argument", f"{fn['name']}: {req}"
    for arg in arguments:
        if arg not in properties:
            return "unknown_argument", f"{fn['name']}: {arg}"
    # Values only: `required` was checked above, and `default` values are not validated.
    error = next(_validator(json.dumps(params, sort_keys=True)).iter_errors(arguments), None)
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "arguments"
        return "wrong_argument_type", f"{fn['name']}.{where}: {error.message[:120]}"
    return None
