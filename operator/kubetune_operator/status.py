"""Pure status helpers: conditions per Kubernetes conventions, progress/report parsing, evaluation gates."""

from __future__ import annotations

import datetime
from typing import Any

from . import api

SUCCEEDED, PROGRESSING, DEGRADED = "Succeeded", "Progressing", "Degraded"
PENDING, RUNNING, PHASE_SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
FINISHED_PHASES = (PHASE_SUCCEEDED, FAILED)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str,
                  generation: int | None, at: str | None = None) -> list[dict[str, Any]]:
    """A new, complete conditions list (merge-patch replaces lists whole). lastTransitionTime moves only
    when the status flips."""
    out = [dict(c) for c in conditions if c.get("type") != type_]
    old = next((c for c in conditions if c.get("type") == type_), None)
    when = old["lastTransitionTime"] if old and old.get("status") == status and old.get(
        "lastTransitionTime") else (at or now())
    cond = {"type": type_, "status": status, "reason": reason, "message": message[:4000],
            "lastTransitionTime": when}
    if generation is not None:
        cond["observedGeneration"] = generation
    out.append(cond)
    order = {SUCCEEDED: 0, PROGRESSING: 1, DEGRADED: 2}
    return sorted(out, key=lambda c: order.get(c["type"], 9))


def condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def _num(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def stage_progress(progress: object) -> dict[str, Any]:
    """progress.json (written by `kubetune-job train`) -> StageStatus fields (camelCase)."""
    if not isinstance(progress, dict):
        return {}
    out = {"step": _num(progress, "step", "global_step"), "total": _num(progress, "total", "total_steps", "max_steps"),
           "loss": _num(progress, "loss"), "tokensPerSecond": _num(progress, "tokens_per_second",
                                                                   "tokensPerSecond"),
           "checkpoint": _num(progress, "checkpoint", "last_checkpoint")}
    return {k: v for k, v in out.items() if v is not None}


def suite_results(report: object) -> list[dict[str, Any]]:
    """report.json (written by `kubetune-job evaluate`) -> [{suite, accuracy, falseCallRate}]."""
    if not isinstance(report, dict):
        return []
    suites = report.get("suites") or {}
    rows = suites.items() if isinstance(suites, dict) else (
        (s.get("suite") or s.get("name"), s) for s in suites if isinstance(s, dict))
    out = []
    for name, agg in rows:
        if not isinstance(agg, dict) or not name:
            continue
        row = {"suite": str(name), "accuracy": _num(agg, "accuracy"),
               "falseCallRate": _num(agg, "false_call_rate", "falseCallRate")}
        out.append({k: v for k, v in row.items() if v is not None})
    return out


def mean_accuracy(results: list[dict[str, Any]]) -> float | None:
    values = [r["accuracy"] for r in results if isinstance(r.get("accuracy"), int | float)]
    return round(sum(values) / len(values), 4) if values else None


def gate_failures(gates: api.GatesSpec, results: list[dict[str, Any]] | None) -> list[str]:
    """Messages for every gate the final model misses (a missing report fails every gate)."""
    if not gates.min_accuracy and gates.max_false_call_rate is None:
        return []
    if results is None:
        return ["the final evaluation report could not be read"]
    by_suite = {r["suite"]: r for r in results}
    out = []
    for suite, minimum in gates.min_accuracy.items():
        acc = by_suite.get(suite, {}).get("accuracy")
        if acc is None or acc < minimum:
            out.append(f"spec.evaluation.gates.minAccuracy.{suite}: accuracy {acc} < {minimum}")
    if gates.max_false_call_rate is not None:
        rates = [r["falseCallRate"] for r in results if r.get("falseCallRate") is not None]
        worst = max(rates) if rates else None
        if worst is None or worst > gates.max_false_call_rate:
            out.append(f"spec.evaluation.gates.maxFalseCallRate: false-call rate {worst} > "
                       f"{gates.max_false_call_rate}")
    return out


def job_state(job: dict[str, Any]) -> tuple[str, str, str]:
    """(state, reason, message) of a batch/v1 Job: state is succeeded | failed | running | suspended."""
    st = job.get("status") or {}
    for c in st.get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "succeeded", c.get("reason") or "Completed", c.get("message") or ""
        if c.get("status") == "True" and c.get("type") in ("Failed", "FailureTarget"):
            return "failed", c.get("reason") or "Failed", c.get("message") or ""
    if (st.get("succeeded") or 0) >= 1:
        return "succeeded", "Completed", ""
    if (job.get("spec") or {}).get("suspend"):
        return "suspended", "Suspended", "waiting for admission"
    return "running", "Running", ""
