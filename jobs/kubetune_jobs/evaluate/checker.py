"""BFCL's AST checker semantics, in our own code: does a list of calls match the acceptable answers?

Ground truth is BFCL's format, `[{function_name: {param: [acceptable values...]}}]`; calls are
`{"name", "arguments"}` dicts with names already mapped back to the documented ones. The decisions
follow bfcl_eval/eval_checker/ast_eval/ast_checker.py (Python language) item for item, including its
quirks, because the goal is agreement with BFCL on every item:
  * "parallel" categories: same number of calls, each expected call matched greedily, in any order;
    every other category: exactly one call.
  * A call fails on a wrong name, a missing required parameter, a parameter that is not documented or
    not in the answer, a value of the wrong type, or a value outside the acceptable list; a parameter in
    the answer that was omitted fails unless `""` is among its acceptable values.
  * Types are strict (`type(v) is T`): an int is accepted for a float, a bool never for an int. When
    the acceptable values have another type than the documented one (BFCL's "variable" answers), a
    value of the acceptable values' type is accepted and compared as is.
  * Strings compare after removing spaces and `,./-_*^`, lower-casing and turning `'` into `"`;
    lists compare in order (string elements normalised); dicts may not add keys.
Function docs may use BFCL's type names or JSON Schema's (`number`, `object`), so the seed suite's
OpenAI schemas are checked by the same code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

TYPES: dict[str, type] = {
    "string": str, "integer": int, "float": float, "number": float, "boolean": bool,
    "array": list, "tuple": list, "dict": dict, "object": dict, "any": str,
}
_NESTED = ("array", "tuple")
_STRIP = re.compile(r"[ ,./\-_*^]")

Calls = list[dict[str, Any]]


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str = ""


PASS = Verdict(True)


def normalize(text: str) -> str:
    """BFCL's string standardisation: `April 1, 2024` equals `april 1,2024`."""
    return _STRIP.sub("", text).lower().replace("'", '"')


def mode_of(category: str) -> str:
    """How a category is scored: `no_call`, `parallel` (any order), `multiple` or `simple` (one call)."""
    if "irrelevance" in category or category == "no_call":
        return "no_call"
    if "parallel" in category:
        return "parallel"
    if "multiple" in category:
        return "multiple"
    return "simple"


def check(functions: list[dict[str, Any]], calls: Calls, ground_truth: list[dict[str, Any]], category: str) -> Verdict:
    """Score one item the way BFCL's `ast_checker` (or its irrelevance check) would."""
    mode = mode_of(category)
    if mode == "no_call":
        if calls:
            return Verdict(False, f"called {', '.join(c['name'] for c in calls)} where no call was expected")
        return PASS
    if not calls:
        return Verdict(False, "no function call")
    if len(calls) != len(ground_truth) or (mode == "simple" and len(calls) != 1):
        return Verdict(False, f"wrong number of calls: expected {len(ground_truth)}, got {len(calls)}")
    if mode == "parallel":
        return _check_any_order(functions, calls, ground_truth)
    name, answer = next(iter(ground_truth[0].items()))
    # BFCL checks "simple" items against the first documented function, "multiple" ones by name.
    function = functions[0] if mode == "simple" else _find(functions, name)
    if function is None:
        return Verdict(False, f"ground truth names undocumented function {name!r}")
    reason = check_call(function, calls[0], answer)
    return Verdict(reason is None, reason or "")


def _find(functions: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((f for f in functions if f["name"] == name), None)


def _check_any_order(functions: list[dict[str, Any]], calls: Calls, ground_truth: list[dict[str, Any]]) -> Verdict:
    matched: set[int] = set()
    for expected in ground_truth:
        name, answer = next(iter(expected.items()))
        function = _find(functions, name)
        if function is None:
            return Verdict(False, f"ground truth names undocumented function {name!r}")
        reasons = []
        for index, call in enumerate(calls):
            if index in matched:
                continue
            reason = check_call(function, call, answer)
            if reason is None:
                matched.add(index)
                break
            reasons.append(reason)
        else:
            return Verdict(False, f"no call matches expected {name}: {reasons[-1] if reasons else 'all used'}")
    return PASS


def check_call(function: dict[str, Any], call: dict[str, Any], answer: dict[str, list[Any]]) -> str | None:
    """None when `call` is an acceptable call of `function`, else why not."""
    if call["name"] != function["name"]:
        return f"wrong function: expected {function['name']}, got {call['name']}"
    params = function.get("parameters") or {}
    documented = params.get("properties") or {}
    arguments = call["arguments"]
    for name in params.get("required") or []:
        if name not in arguments:
            return f"missing required parameter {name!r}"
    for name, value in arguments.items():
        if name not in documented or name not in answer:
            return f"unexpected parameter {name!r}"
        reason = _check_value(name, value, documented[name], answer[name])
        if reason:
            return reason
    for name, acceptable in answer.items():
        if name not in arguments and "" not in acceptable:
            return f"parameter {name!r} omitted but not optional"
    return None


def _check_value(name: str, value: Any, schema: dict[str, Any], acceptable: list[Any]) -> str | None:
    type_name = schema.get("type", "any")
    expected = TYPES.get(type_name, str)
    items_type = (schema.get("items") or {}).get("type") if type_name in _NESTED else None
    nested = TYPES.get(items_type, str) if items_type else None
    if expected is float and type(value) is int:
        value = float(value)  # Python's own int -> float promotion, which BFCL allows
    ok, is_variable = _type_ok(value, acceptable, expected, nested)
    if not ok:
        return f"wrong type for {name!r}: expected {type_name}, got {type(value).__name__} ({value!r})"
    if not is_variable:
        if expected is dict:
            return None if _dict_ok(value, acceptable) else f"invalid value for {name!r}: {value!r}"
        if expected is list and nested is dict:
            return None if _list_of_dicts_ok(value, acceptable) else f"invalid value for {name!r}: {value!r}"
        if expected is str:
            choices = [normalize(a) for a in acceptable if type(a) is str]
            return None if normalize(value) in choices else f"invalid value for {name!r}: {value!r}, expected one of {acceptable}"
        if expected is list:
            return None if _list_ok(value, acceptable) else f"invalid value for {name!r}: {value!r}, expected one of {acceptable}"
    if value not in acceptable:
        return f"invalid value for {name!r}: {value!r}, expected one of {acceptable}"
    return None


def _answer_type(acceptable: Any) -> type | None:
    # The type of the first acceptable value that is not the "may be omitted" marker.
    return next((type(a) for a in acceptable if a != ""), None)


def _type_ok(value: Any, acceptable: Any, expected: type, nested: type | None) -> tuple[bool, bool]:
    """(type acceptable, value is a BFCL "variable" answer to compare verbatim)."""
    answer_type = _answer_type(acceptable)
    is_variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if nested is None:
            return True, is_variable
        # Array elements are checked one level deep against each acceptable list; a non-list
        # acceptable value (e.g. the "" marker) waives the check, as in BFCL.
        for candidate in acceptable:
            if type(candidate) is list and not all(_type_ok(v, candidate, nested, None)[0] for v in value):
                continue
            return True, is_variable
        return False, is_variable
    if answer_type is not None and type(value) is answer_type:
        return True, True
    return False, is_variable


def _norm_if_str(value: Any) -> Any:
    return normalize(value) if type(value) is str else value


def _list_ok(value: list[Any], acceptable: list[Any]) -> bool:
    got = [_norm_if_str(v) for v in value]
    # BFCL iterates every acceptable value as a sequence; the "" marker becomes [] that way.
    return any(got == [_norm_if_str(x) for x in a] for a in acceptable if isinstance(a, list | str))


def _dict_ok(value: dict[str, Any], acceptable: list[Any]) -> bool:
    for candidate in acceptable:
        if candidate == "" or not isinstance(candidate, dict):
            continue
        if all(
            key in candidate and _norm_if_str(v) in [_norm_if_str(a) for a in candidate[key]]
            for key, v in value.items()
        ) and all(key in value or "" in vals for key, vals in candidate.items()):
            return True
    return False


def _list_of_dicts_ok(value: list[Any], acceptable: list[Any]) -> bool:
    for candidate in acceptable:
        if not isinstance(candidate, list | str) or len(value) != len(candidate):
            continue
        if all(_dict_ok(v, [c]) for v, c in zip(value, candidate, strict=True)):
            return True
    return False


def exact_match(expected: Calls, calls: Calls) -> Verdict:
    """Held-out rows: the same calls with equal arguments, in any order (no acceptable-value lists)."""
    if not calls and expected:
        return Verdict(False, "no function call")
    if len(calls) != len(expected):
        return Verdict(False, f"wrong number of calls: expected {len(expected)}, got {len(calls)}")
    remaining = list(calls)
    for want in expected:
        match = next((c for c in remaining if c["name"] == want["name"] and c["arguments"] == want["arguments"]), None)
        if match is None:
            return Verdict(False, f"no call matches expected {want['name']}({want['arguments']})")
        remaining.remove(match)
    return PASS


def _pick(acceptable: list[Any]) -> Any:
    value = next(v for v in acceptable if v != "")
    # Dict answers hold acceptable lists per key (one level, as BFCL's dict_checker reads them).
    if isinstance(value, dict) and all(isinstance(v, list) for v in value.values()):
        return {k: _pick(v) for k, v in value.items() if any(x != "" for x in v)}
    if isinstance(value, list) and value and all(
            isinstance(d, dict) and all(isinstance(v, list) for v in d.values()) for d in value):
        return [_pick([d])for d in value]
    return value


def example_calls(ground_truth: list[dict[str, Any]], functions: list[dict[str, Any]]) -> Calls:
    """One acceptable answer for BFCL ground truth: the first acceptable value of every parameter.
    Parameters with only `""` acceptable are left out, and so are optional ones the function doc does
    not list (a few BFCL answers name them). Used to score ground truth as predictions."""
    calls = []
    for expected in ground_truth:
        name, answer = next(iter(expected.items()))
        function = _find(functions, name)
        documented = (function or {}).get("parameters", {}).get("properties", {})
        calls.append({"name": name, "arguments": {
            p: _pick(vals) for p, vals in answer.items()
            if any(v != "" for v in vals) and (p in documented or "" not in vals)}})
    return calls
