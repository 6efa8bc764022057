"""BFCL ground truths pass our checker (all non-live ones, all but a handful of live ones, which BFCL's own
checker rejects as well), systematic corruptions fail, and every verdict
agrees with BFCL's own ast_checker (its source from the installed wheel, run as an oracle in the test
only, with the imports it needs for other languages and models stubbed)."""

from __future__ import annotations

import copy
import enum
import importlib.util
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from kubetune_jobs.evaluate import bfcl, checker, suites

CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple",
              "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple"]
COUNTS = {"simple_python": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200, "irrelevance": 240,
          "live_simple": 258, "live_multiple": 1053, "live_parallel": 16, "live_parallel_multiple": 24,
          "live_irrelevance": 884}


@pytest.fixture(scope="module")
def oracle():
    src = Path(importlib.util.find_spec("bfcl_eval").submodule_search_locations[0]) / "eval_checker" / "ast_eval" / "ast_checker.py"
    code = re.sub(r"^from bfcl_eval[^\n]*?\(\n.*?\)\n|^from bfcl_eval[^\n]*\n", "", src.read_text(), flags=re.M | re.S)
    Language = enum.Enum("Language", "PYTHON JAVA JAVASCRIPT")  # noqa: N806
    ns = {"Language": Language, "JAVA_TYPE_CONVERSION": {}, "JS_TYPE_CONVERSION": {},
          "MODEL_CONFIG_MAPPING": {"oracle": SimpleNamespace(underscore_to_dot=True)}}
    exec(compile(code, str(src), "exec"), ns)  # noqa: S102

    def run(item, calls):
        out = [{bfcl.shown_name(c["name"]): c["arguments"]} for c in calls]
        return ns["ast_checker"](item.functions, out, item.ground_truth, Language.PYTHON, item.category, "oracle")["valid"]
    return run


def corruptions(item):
    good = checker.example_calls(item.ground_truth, item.functions)
    yield "wrong name", [{**good[0], "name": good[0]["name"] + "_x"}] + good[1:]
    yield "extra call", good + [copy.deepcopy(good[0])]
    yield "no call", []
    fn = next(f for f in item.functions if f["name"] == good[0]["name"])
    required = [p for p in fn["parameters"].get("required", []) if p in good[0]["arguments"]]
    if required:
        args = {k: v for k, v in good[0]["arguments"].items() if k != required[0]}
        yield "dropped required", [{**good[0], "arguments": args}] + good[1:]
    if good[0]["arguments"]:
        name, value = next(iter(good[0]["arguments"].items()))
        wrong = True if type(value) is int else 12345 if isinstance(value, dict) else {"corrupt": [1]}
        yield "wrong type", [{**good[0], "arguments": {**good[0]["arguments"], name: wrong}}] + good[1:]


def test_counts_and_conversion():
    for category, count in COUNTS.items():
        assert len(suites.load(f"bfcl-{category}")) == count
    item = suites.load("bfcl-simple_python")[1]
    assert item.functions[0]["name"] == "math.factorial"
    assert item.tools[0]["function"]["name"] == "math_factorial"
    assert item.original_name("math_factorial") == "math.factorial"
    schema = bfcl.to_json_schema({"type": "dict", "properties": {"a": {"type": "float"}, "b": {"type": "tuple", "items": {"type": "any"}}}})
    assert schema == {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "array", "items": {"type": "string"}}}}


@pytest.mark.parametrize("category", CATEGORIES)
def test_ground_truth_passes_and_corruptions_fail_in_agreement_with_bfcl(category, oracle):
    items = suites.load(f"bfcl-{category}")
    kinds: dict[str, int] = {}
    unanswerable = []
    for item in items:
        good = checker.example_calls(item.ground_truth, item.functions)
        passed = checker.check(item.functions, good, item.ground_truth, category).passed
        assert passed == oracle(item, good), item.id
        if not passed:
            # A few live answers leave a required parameter without any acceptable value (or name one the
            # function does not document); BFCL's own checker rejects them too.
            unanswerable.append(item.id)
            continue
        for kind, calls in corruptions(item):
            verdict = checker.check(item.functions, calls, item.ground_truth, category)
            assert not verdict.passed, (item.id, kind)
            assert oracle(item, calls) is False, (item.id, kind)
            kinds[kind] = kinds.get(kind, 0) + 1
    assert set(kinds) == {"wrong name", "extra call", "no call", "dropped required", "wrong type"}
    assert len(unanswerable) <= (len(items) // 100 if category.startswith("live_") else 0), unanswerable


@pytest.mark.parametrize("category", CATEGORIES)
def test_perturbed_answers_agree_with_bfcl(category, oracle):
    """Near-misses where either verdict is possible: ours must equal BFCL's on each."""
    disagreements = []
    for item in suites.load(f"bfcl-{category}"):
        good = checker.example_calls(item.ground_truth, item.functions)
        for args in _perturb(good[0]["arguments"]):
            calls = [{**good[0], "arguments": args}] + good[1:]
            ours = checker.check(item.functions, calls, item.ground_truth, category).passed
            if ours != oracle(item, calls):
                disagreements.append((item.id, args))
    assert not disagreements, disagreements[:5]


def _perturb(args):
    for key, value in args.items():
        variants = []
        if isinstance(value, str):
            variants = [value.upper(), value + " ", value.replace(" ", "_"), value + "x", 1]
        elif type(value) is float:
            variants = [int(value), value + 1, str(value)]
        elif type(value) is int:
            variants = [float(value), value + 1, bool(value), str(value)]
        elif isinstance(value, list):
            variants = [list(reversed(value)), value[:-1], [str(v) for v in value], [*value, value[0]] if value else [1]]
        elif isinstance(value, dict):
            variants = [{**value, "extra": 1}, dict(list(value.items())[:-1])]
        for variant in variants:
            yield {**args, key: variant}
        yield {k: v for k, v in args.items() if k != key}
