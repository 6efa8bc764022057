"""What a FineTuneRun's status says about its stages and evaluations, read from the jobs' records
(`contract.records`), and the evaluation gates the final model must meet. Pure."""

from __future__ import annotations

from typing import Any

from kubetune_jobs.contract import records

from . import api

SUCCEEDED, PROGRESSING, DEGRADED = "Succeeded", "Progressing", "Degraded"
PENDING, RUNNING, PHASE_SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
FINISHED_PHASES = (PHASE_SUCCEEDED, FAILED)


def stage_progress(progress: records.Progress | dict[str, Any] | None) -> dict[str, Any]:
    """A stage's progress.json -> StageStatus fields (camelCase), the unset ones left out."""
    if isinstance(progress, dict):
        progress = records.read(records.Progress, progress)
    if progress is None:
        return {}
    out = {"step": progress.step, "total": progress.total, "loss": progress.loss,
           "tokensPerSecond": progress.tokens_per_second, "checkpoint": progress.checkpoint,
           "worldSize": progress.world_size, "effectiveBatch": progress.effective_batch}
    return {k: v for k, v in out.items() if v is not None}


def suite_results(report: records.ReportSummary | dict[str, Any] | None) -> list[dict[str, Any]]:
    """report.json -> [{suite, accuracy, falseCallRate}] (SuiteResult fields, the unset ones left out)."""
    if isinstance(report, dict):
        report = records.read(records.ReportSummary, report)
    if report is None:
        return []
    out = []
    for name, figures in report.suites.items():
        row = {"suite": name, "accuracy": figures.accuracy, "falseCallRate": figures.false_call_rate}
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
