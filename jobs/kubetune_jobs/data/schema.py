"""Tool schemas: xlam's Python-style parameter types to JSON Schema, and argument validation.

xlam-function-calling-60k describes parameters as `{name: {description, type, default}}` with types
written as Python annotations (`str`, `List[int]`, `Dict[str, Any]`, `Tuple[float, float]`,
`Optional[str]`, `int, optional`, ...). Models are shown OpenAI function schemas, so each tool is
converted once; tools already in JSON Schema pass through unchanged once jsonschema accepts their
parameters as a schema (an unknown type or a pattern that is not a regular expression would
otherwise fail while checking some row's arguments). Anything unusable is a `SchemaError`, which
drops the row as `invalid_tool_schema`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as JSONSchemaError

from . import strict_json

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
MAX_TYPE_DEPTH = 16  # List[Dict[str, List[int]]] is 3
MAX_TYPE_CHARS = 500


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


def python_type_to_schema(annotation: str, depth: int = 0) -> dict[str, Any]:
    """`List[Dict[str, int]]` -> `{"type": "array", "items": {"type": "object", ...}}`."""
    text = annotation.strip()
    if len(text) > MAX_TYPE_CHARS:
        raise SchemaError(f"type annotation longer than {MAX_TYPE_CHARS} characters")
    if depth > MAX_TYPE_DEPTH:
        raise SchemaError(f"type nested more than {MAX_TYPE_DEPTH} levels")
    if "|" in text and "[" not in text:
        return _union([p.strip() for p in text.split("|")], depth)
    match = re.fullmatch(r"([\w.]+)\s*(?:\[(.*)\])?", text, re.DOTALL)
    if not match:
        raise SchemaError(f"unreadable type {annotation!r}")
    head = match.group(1).rsplit(".", 1)[-1].lower()
    args = _split_args(match.group(2)) if match.group(2) is not None else []
    if head == "optional" and len(args) == 1:
        return python_type_to_schema(args[0], depth + 1)
    if head == "union":
        return _union(args, depth)
    if head == "literal":
        try:
            return {"enum": [strict_json.loads(a.replace("'", '"')) for a in args]}
        except strict_json.InvalidJSON as exc:
            raise SchemaError(f"unreadable literal in {annotation[:80]!r}: {exc.detail}") from None
    if head not in _SCALARS:
        raise SchemaError(f"unknown type {annotation!r}")
    schema = dict(_SCALARS[head])
    if head in ("list", "set", "array") and args:
        schema["items"] = python_type_to_schema(args[0], depth + 1)
    elif head == "tuple" and args:
        if len(args) == 2 and args[1] == "...":
            schema["items"] = python_type_to_schema(args[0], depth + 1)
        else:
            items = [python_type_to_schema(a, depth + 1) for a in args]
            schema["prefixItems"] = items
            schema["minItems"] = schema["maxItems"] = len(items)
    elif head in ("dict", "mapping") and len(args) == 2:
        value = python_type_to_schema(args[1], depth + 1)
        if value:
            schema["additionalProperties"] = value
    return schema


def _union(args: list[str], depth: int) -> dict[str, Any]:
    options = [python_type_to_schema(a, depth + 1) for a in args if a.lower() not in ("none", "nonetype")]
    if len(options) == 1:
        return options[0]
    return {"anyOf": options}


def is_json_schema_tool(tool: dict[str, Any]) -> bool:
    fn = tool.get("function", tool)
    if not isinstance(fn, dict):
        return False
    params = fn.get("parameters")
    return isinstance(params, dict) and params.get("type") == "object" and isinstance(
        params.get("properties", {}), dict
    )


def to_openai_tool(tool: Any) -> dict[str, Any]:
    """An xlam (or JSON Schema) tool as `{"type": "function", "function": {name, description, parameters}}`."""
    if not isinstance(tool, dict):
        raise SchemaError("tool is not an object")
    if "function" in tool and not isinstance(tool["function"], dict):
        raise SchemaError("tool's function is not an object")
    if is_json_schema_tool(tool):
        fn = tool.get("function", tool)
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise SchemaError("tool has no name")
        if not isinstance(fn.get("description", ""), str):
            raise SchemaError(f"tool {fn['name']!r}: description is not text")
        try:
            Draft202012Validator.check_schema(fn["parameters"])
        except JSONSchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "parameters"
            raise SchemaError(f"tool {fn['name']!r}: {where}: {exc.message[:120]}") from None
        return {"type": "function", "function": fn}
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise SchemaError("tool has no name")
    if not isinstance(tool.get("description", ""), str):
        raise SchemaError(f"tool {name!r}: description is not text")
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
        if not isinstance(spec.get("description", ""), str):
            raise SchemaError(f"tool {name!r}: parameter {pname!r}: description is not text")
        if spec.get("description"):
            prop["description"] = spec["description"]
        if "default" in spec and spec["default"] not in (None, ""):
            prop["default"] = spec["default"]
        properties[pname] = prop
        if not optional:
            required.append(pname)
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": tool.get("description", ""),
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


Checker = Callable[[Any], str | None]
_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    # JSON Schema: an integer is any number with no fractional part, and a bool is never a number.
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}
_ANNOTATIONS = {"description", "default", "format", "title", "examples"}
_HANDLED = _ANNOTATIONS | {"type", "items", "prefixItems", "minItems", "maxItems", "uniqueItems", "properties",
                           "required", "additionalProperties", "anyOf", "enum"}


class _Unsupported(Exception):
    pass


def _compile(schema: Any, where: str) -> Checker:
    """A fast checker for the JSON Schema subset `python_type_to_schema` produces (jsonschema spends
    most of prepare's time re-walking the same small schemas); other keywords raise _Unsupported."""
    if schema is True or schema == {}:
        return lambda v: None
    if not isinstance(schema, dict) or set(schema) - _HANDLED:
        raise _Unsupported
    checks: list[Checker] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if any(not isinstance(n, str) or n not in _TYPES for n in names):
            raise _Unsupported
        tests = [_TYPES[n] for n in names]
        label = " or ".join(names)
        checks.append(lambda v: None if any(t(v) for t in tests) else f"{where}: {v!r} is not of type {label}")
    if "enum" in schema:
        allowed = schema["enum"]
        if not isinstance(allowed, list):
            raise _Unsupported
        checks.append(lambda v: None if v in allowed else f"{where}: {v!r} is not one of {allowed!r}")
    if "anyOf" in schema:
        if not isinstance(schema["anyOf"], list):
            raise _Unsupported
        options = [_compile(o, where) for o in schema["anyOf"]]
        checks.append(lambda v: None if any(o(v) is None for o in options) else f"{where}: {v!r} fits no option")
    if "items" in schema or "prefixItems" in schema or {"minItems", "maxItems", "uniqueItems"} & set(schema):
        checks.append(_array_checker(schema, where))
    if "properties" in schema or "additionalProperties" in schema or "required" in schema:
        checks.append(_object_checker(schema, where))

    def check(value: Any) -> str | None:
        for c in checks:
            problem = c(value)
            if problem:
                return problem
        return None

    return check


def _array_checker(schema: dict[str, Any], where: str) -> Checker:
    if not isinstance(schema.get("prefixItems", []), list):
        raise _Unsupported
    prefix = [_compile(s, f"{where}[{i}]") for i, s in enumerate(schema.get("prefixItems", []))]
    items = _compile(schema["items"], f"{where}[]") if "items" in schema else None
    lo, hi, unique = schema.get("minItems", 0), schema.get("maxItems"), schema.get("uniqueItems", False)
    if type(lo) is not int or (hi is not None and type(hi) is not int) or not isinstance(unique, bool):
        raise _Unsupported

    def check(value: Any) -> str | None:
        if not isinstance(value, list):
            return None  # the type check reports it
        if len(value) < lo or (hi is not None and len(value) > hi):
            return f"{where}: expected {lo}..{hi if hi is not None else ''} items, got {len(value)}"
        if unique and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
            return f"{where}: items are not unique"
        for i, v in enumerate(value):
            checker = prefix[i] if i < len(prefix) else items
            problem = checker(v) if checker else None
            if problem:
                return problem
        return None

    return check


def _object_checker(schema: dict[str, Any], where: str) -> Checker:
    if not isinstance(schema.get("properties", {}), dict) or not isinstance(schema.get("required", []), list):
        raise _Unsupported
    props = {k: _compile(v, f"{where}.{k}") for k, v in schema.get("properties", {}).items()}
    extra = schema.get("additionalProperties", True)
    extra_check = None if extra is True else (None if extra is False else _compile(extra, f"{where}.*"))
    required = schema.get("required", [])

    def check(value: Any) -> str | None:
        if not isinstance(value, dict):
            return None
        for req in required:
            if req not in value:
                return f"{where}: missing {req!r}"
        for k, v in value.items():
            checker = props.get(k)
            if checker is None:
                if extra is False:
                    return f"{where}: unexpected {k!r}"
                checker = extra_check
            problem = checker(v) if checker else None
            if problem:
                return problem
        return None

    return check


def value_checker(parameters: dict[str, Any], name: str) -> Checker:
    """One tool's argument-value checker, built once per tool."""
    try:
        return _compile(parameters, name)
    except _Unsupported:
        validator = Draft202012Validator(parameters)

        def check(value: Any) -> str | None:
            try:
                error = next(validator.iter_errors(value), None)
            except RecursionError:
                return f"{name}: arguments nested too deeply to check"
            if error is None:
                return None
            path = ".".join(str(p) for p in error.absolute_path)
            return f"{name}.{path or 'arguments'}: {error.message[:120]}"

        return check


@dataclass(frozen=True)
class Tool:
    """A converted tool and what validates calls to it."""

    schema: dict[str, Any]  # OpenAI function form
    check_values: Checker

    @property
    def name(self) -> str:
        return self.schema["function"]["name"]


@lru_cache(maxsize=65536)
def _tool_from_json(raw: str) -> Tool:
    try:
        schema = to_openai_tool(json.loads(raw))
        strict_json.check(schema)  # what is written to train.jsonl must be plain JSON
        fn = schema["function"]
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        # `required` is reported separately (missing_required_argument), so values alone are checked here.
        values_only = {k: v for k, v in params.items() if k != "required"}
        return Tool(schema, value_checker(values_only, fn["name"]))
    except strict_json.InvalidJSON as exc:
        raise SchemaError(str(exc)) from None
    except RecursionError:
        raise SchemaError("schema nested too deeply") from None


def convert_tool(raw: Any) -> Tool:
    """`to_openai_tool` plus its checker, cached: the same tool recurs across thousands of rows."""
    try:
        text = json.dumps(raw)
    except (TypeError, ValueError, RecursionError) as exc:  # values from Parquet or the Hub that JSON cannot hold
        raise SchemaError(f"tool is not JSON: {exc}") from None
    return _tool_from_json(text)


def argument_problem(tool: Tool | dict[str, Any], arguments: Any) -> tuple[str, str] | None:
    """Why `arguments` do not fit `tool`, as `(reason, detail)`; None when they do."""
    if isinstance(tool, dict):
        tool = _tool_from_json(json.dumps(tool))
    fn = tool.schema["function"]
    if not isinstance(arguments, dict):
        return "wrong_argument_type", f"{fn['name']}: arguments are not an object"
    params = fn.get("parameters") or {}
    properties = params.get("properties", {})
    for req in params.get("required", []):
        if req not in arguments:
            return "missing_required_argument", f"{fn['name']}: {req}"
    for arg in arguments:
        if arg not in properties:
            return "unknown_argument", f"{fn['name']}: {arg}"
    problem = tool.check_values(arguments)
    return ("wrong_argument_type", problem) if problem else None
