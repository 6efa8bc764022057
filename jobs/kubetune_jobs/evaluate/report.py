"""Scoring items against predictions, the aggregates, and the report files (report.json, report.md).

Decoding follows BFCL and vLLM's hermes parser alike: an output with any undecodable call markup, or
with a call whose arguments are not a JSON object, counts as no decodable call at all, so it fails
where a call was expected and passes an irrelevance item. Items read from raw text keep that text
(`raw`), so the reading can be checked against vLLM's own parser afterwards.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, datetime
from functools import cache
from typing import Any

from ..precision import Precision
from . import checker
from .suites import AST, CHAT, EXACT, Item
from .targets import Prediction, perplexity

# The rates every tool suite and category gets, in table order: (key, column title).
RATES = [
    ("accuracy", "accuracy"),
    ("name_accuracy", "name acc."),
    ("false_call_rate", "false call"),
    ("missed_call_rate", "missed call"),
    ("unparseable_rate", "unparseable"),
    ("schema_violation_rate", "schema viol."),
]


@cache
def _validator(schema_json: str) -> Any:
    import jsonschema

    schema = json.loads(schema_json)
    # Not check_schema'd up front (it dominates scoring time); a broken schema shows up while validating.
    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)


def schema_violations(item: Item, calls: list[dict[str, Any]]) -> list[str]:
    """Calls whose arguments do not validate against the JSON schema offered for that function."""
    offered = {t["function"]["name"]: t["function"].get("parameters") or {} for t in item.tools}
    out = []
    for call in calls:
        schema = offered.get(call["name"])
        if schema is None:
            continue
        validator = _validator(json.dumps(schema, sort_keys=True))
        try:
            error = next(iter(validator.iter_errors(call["arguments"])), None)
        except Exception:  # noqa: BLE001 - an invalid offered schema cannot be violated
            continue
        if error is not None:
            out.append(f"{call['name']}: {error.message[:120]}")
    return out


def _expected_names(item: Item) -> list[str]:
    if item.scoring == AST:
        return sorted(next(iter(g)) for g in item.ground_truth)
    return sorted(c["name"] for c in item.ground_truth)


PROMPT_CHARS = 500  # what the run report shows of a request; the suite has it whole


def _question(item: Item) -> str | None:
    """The item's last user turn (what the model was asked), shortened."""
    content = next((m.get("content") for m in reversed(item.messages) if m.get("role") == "user"), None)
    return content[:PROMPT_CHARS] if isinstance(content, str) else None


def score_item(item: Item, pred: Prediction | None) -> dict[str, Any]:
    rec: dict[str, Any] = {"id": item.id, "suite": item.suite, "category": item.category,
                           "question": _question(item)}
    if item.scoring != CHAT:
        rec["expected"] = item.ground_truth  # BFCL's acceptable values (AST) or the calls themselves (EXACT)
    if item.scoring == CHAT:
        rec.update(passed=None, reason="", scored=pred is not None and pred.failure is None)
        return rec
    if pred is None or pred.failure:
        rec.update(passed=False, scored=False, reason=pred.failure if pred else "no prediction for this item")
        return rec
    unparseable = bool(pred.errors)
    calls = [] if unparseable else [
        {"name": item.original_name(c["name"]), "arguments": c["arguments"]} for c in pred.calls]
    if item.scoring == EXACT:
        expected = [{"name": c["name"], "arguments": _as_dict(c["arguments"])} for c in item.ground_truth]
        verdict = checker.exact_match(expected, calls) if expected else checker.check([], calls, [], "no_call")
    else:
        category = item.category if item.ground_truth else "irrelevance"
        verdict = checker.check(item.functions, calls, item.ground_truth, category)
    if not verdict.passed and unparseable and item.expects_call:
        limit = " (cut off at the --max-new-tokens limit)" if pred.cut_off else ""
        verdict = checker.Verdict(False, f"unparseable output{limit}: {pred.errors[0]}")
    rec.update(
        passed=verdict.passed, reason=verdict.reason, scored=True,
        expects_call=item.expects_call, called=bool(calls), unparseable=unparseable,
        name_correct=(sorted(c["name"] for c in calls) == _expected_names(item)) if item.expects_call else None,
        schema_violations=schema_violations(item, pred.calls) if not unparseable else [],
        calls=calls, latency_s=pred.latency_s, cut_off=pred.cut_off,
    )
    if pred.text:
        rec["text"] = pred.text[:500]
    if pred.raw is not None:
        rec["raw"] = pred.raw  # whole, so the reading of it can be checked again later
    return rec


def _as_dict(args: Any) -> Any:
    return json.loads(args) if isinstance(args, str) else args


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: a reported latency is one that happened)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def aggregate(records: list[dict[str, Any]]) -> dict[str, Any]:
    scored = [r for r in records if r.get("scored")]
    tool = [r for r in scored if r["passed"] is not None]
    call_items = [r for r in tool if r["expects_call"]]
    no_call_items = [r for r in tool if not r["expects_call"]]
    called = [r for r in tool if r["called"]]
    latencies = [r["latency_s"] for r in scored if r.get("latency_s") is not None]
    agg: dict[str, Any] = {"items": len(records), "scored": len(scored)}
    if not records or any(r["passed"] is not None for r in records):  # a tool suite (chat items have None)
        agg.update(
            passed=sum(r["passed"] for r in tool),
            # Accuracy counts unscored items as failures, so a partial run never looks better.
            accuracy=_rate(sum(r["passed"] for r in tool), len(records)),
            name_accuracy=_rate(sum(bool(r["name_correct"]) for r in call_items), len(call_items)),
            false_call_rate=_rate(sum(r["called"] for r in no_call_items), len(no_call_items)),
            missed_call_rate=_rate(sum(not r["called"] for r in call_items), len(call_items)),
            unparseable_rate=_rate(sum(r["unparseable"] for r in tool), len(tool)),
            schema_violation_rate=_rate(sum(bool(r["schema_violations"]) for r in called), len(called)),
        )
    losses = [r for r in scored if r.get("tokens")]
    if losses:
        tokens = sum(r["tokens"] for r in losses)
        agg.update(loss=sum(r["loss_sum"] for r in losses) / tokens, tokens=tokens)
        agg["perplexity"] = perplexity(agg["loss"])
    verdicts = [r["judge"] for r in scored if r.get("judge") in ("win", "tie", "loss")]
    if verdicts:
        agg["win_rate"] = (verdicts.count("win") + 0.5 * verdicts.count("tie")) / len(verdicts)
    agg["latency_p50_s"] = percentile(latencies, 50)
    agg["latency_p95_s"] = percentile(latencies, 95)
    return agg


def build(records: list[dict[str, Any]], *, suites: list[str], target: str, model_label: str | None,
          run_name: str, precision: Precision | None = None) -> dict[str, Any]:
    """The report; `precision` is what a local model generated in (None when the answers came from
    an endpoint or a file)."""
    by_suite: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_suite[r["suite"]].append(r)
    summary = {}
    for suite in suites:
        recs = by_suite.get(suite, [])
        cats: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in recs:
            cats[r["category"]].append(r)
        summary[suite] = {**aggregate(recs), "categories": {c: aggregate(rs) for c, rs in cats.items()}}
    unscored = [r for r in records if not r.get("scored")]
    return {
        "complete": not unscored,
        "unscored": len(unscored),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": target,
        "model": model_label,
        "run": run_name,
        "precision": precision.name if precision else None,
        "precision_reason": precision.reason if precision else None,
        "suites": summary,
        "items": records,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Evaluation: {report.get('model') or report.get('target')}", ""]
    if not report["complete"]:
        lines += [f"**INCOMPLETE: {report['unscored']} item(s) have no answer; figures cover a partial run.**", ""]
    head = ["suite", "category", "items"] + [t for _, t in RATES] + ["p50 s", "p95 s"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    chat_rows = []
    for suite, agg in report["suites"].items():
        rows = [("all", agg)] + sorted(agg["categories"].items()) if len(agg["categories"]) > 1 else [("all", agg)]
        for cat, a in rows:
            if "loss" in a and "accuracy" not in a:
                chat_rows.append((suite, a))
                continue
            cells = [suite, cat, _fmt(a["items"])] + [_fmt(a.get(k)) for k, _ in RATES]
            cells += [_fmt(a.get("latency_p50_s")), _fmt(a.get("latency_p95_s"))]
            lines.append("| " + " | ".join(cells) + " |")
    if chat_rows:
        lines += ["", "| suite | rows | tokens | loss | perplexity | judge win rate |", "|---|---|---|---|---|---|"]
        for suite, a in chat_rows:
            lines.append(f"| {suite} | {a['items']} | {a.get('tokens')} | {_fmt(a.get('loss'))} | "
                         f"{_fmt(a.get('perplexity'))} | {_fmt(a.get('win_rate'))} |")
    return "\n".join(lines) + "\n"


COMPARE_METRICS = [("accuracy", "accuracy"), ("false_call_rate", "false-call rate"),
                   ("missed_call_rate", "missed-call rate"), ("perplexity", "perplexity")]


def compare(reports: list[tuple[str, dict[str, Any]]]) -> str:
    """The before/after table: one column per report (base, stage 1, stage 2...), one row per figure."""
    labels = [f"{label}{'' if r.get('complete') else ' (incomplete)'}" for label, r in reports]
    lines = ["| suite | category | metric | " + " | ".join(labels) + " |", "|---|---|---|" + "---|" * len(labels)]
    keys: list[tuple[str, str]] = []
    for _, r in reports:
        for suite, agg in r["suites"].items():
            for key in [(suite, "all")] + [(suite, c) for c in sorted(agg.get("categories", {}))]:
                if key not in keys:
                    keys.append(key)
    for suite, cat in keys:
        for metric, title in COMPARE_METRICS:
            values, cells = [], []
            for _, r in reports:
                agg = r["suites"].get(suite, {})
                agg = agg if cat == "all" else agg.get("categories", {}).get(cat, {})
                values.append(agg.get(metric))
                cells.append(_fmt(agg.get(metric)))
                # Suites are small (seed-tools has 33 items): the count shows what one item is worth.
                if metric == "accuracy" and agg.get("accuracy") is not None and "passed" in agg:
                    cells[-1] += f" ({agg['passed']}/{agg['items']})"
            if all(v is None for v in values):
                continue
            lines.append(f"| {suite} | {cat} | {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
