"""What a FineTuneRun's status says about its stages and evaluations, read from the jobs' records
(`contract.records`), and the evaluation gates the final model must meet. Pure.

The records come from the store and are not trusted: a figure that is not a finite number (NaN from a
diverged loss, Infinity) is no figure, nor is a share outside [0, 1] (`kube.figures`): the
status leaves it out and a gate on it fails."""

from __future__ import annotations

from typing import Any

from kubetune_jobs.contract import records

from ..kube.figures import figure, share
from . import api

SUCCEEDED, PROGRESSING, DEGRADED = "Succeeded", "Progressing", "Degraded"
PENDING, RUNNING, PHASE_SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
FINISHED_PHASES = (PHASE_SUCCEEDED, FAILED)


def stage_progress(progress: records.Progress | dict[str, Any] | None) -> dict[str, Any]:
    """A stage's progress.json -> the `StageStatus` fields it sets (by attribute name); unset ones left out."""
    if isinstance(progress, dict):
        progress = records.read(records.Progress, progress)
    if progress is None:
        return {}
    out = {"step": progress.step, "total": progress.total, "loss": figure(progress.loss),
           "tokens_per_second": figure(progress.tokens_per_second), "checkpoint": progress.checkpoint,
           "world_size": progress.world_size, "effective_batch": progress.effective_batch}
    return {k: v for k, v in out.items() if v is not None}


def suite_results(report: records.ReportSummary | dict[str, Any] | None) -> list[api.SuiteResult]:
    """report.json -> one `SuiteResult` per suite (a figure that is not a share left out)."""
    if isinstance(report, dict):
        report = records.read(records.ReportSummary, report)
    if report is None:
        return []
    return [api.SuiteResult(suite=name, accuracy=share(figures.accuracy),
                            false_call_rate=share(figures.false_call_rate))
            for name, figures in report.suites.items()]


def mean_accuracy(results: list[api.SuiteResult]) -> float | None:
    values = [r.accuracy for r in results if r.accuracy is not None]
    return round(sum(values) / len(values), 4) if values else None


def gate_failures(gates: api.GatesSpec, results: list[api.SuiteResult] | None) -> list[str]:
    """Messages for every gate the final model misses (a missing report or figure fails its gate)."""
    if not gates.min_accuracy and gates.max_false_call_rate is None:
        return []
    if results is None:
        return ["the final evaluation report could not be read"]
    by_suite = {r.suite: r for r in results}
    out = []
    for suite, minimum in gates.min_accuracy.items():
        found = by_suite.get(suite)
        acc = found.accuracy if found else None
        if acc is None or acc < minimum:
            out.append(f"spec.evaluation.gates.minAccuracy.{suite}: accuracy {acc} < {minimum}")
    if gates.max_false_call_rate is not None:
        rates = [r.false_call_rate for r in results if r.false_call_rate is not None]
        worst = max(rates) if rates else None
        if worst is None or worst > gates.max_false_call_rate:
            out.append(f"spec.evaluation.gates.maxFalseCallRate: false-call rate {worst} > "
                       f"{gates.max_false_call_rate}")
    return out
