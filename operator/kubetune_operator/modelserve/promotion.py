"""The promotion gate: does the candidate's evaluation beat the serving model's? Pure.

The gate reads the per-suite accuracy and false-call rate of both evaluations (`contract.records`): every
`minAccuracy` is met by the candidate, its mean accuracy over the gated suites beats the serving model's by
at least `minMargin`, and no suite's false-call rate exceeds `maxFalseCallRate`. The verdict carries the
figures side by side, for the status, the Event and `kubectl describe`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubetune_jobs.contract import records

from . import api


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: tuple[str, ...]  # why it failed (empty when it passed)
    summary: str  # the figures side by side

    @property
    def message(self) -> str:
        return self.summary if self.passed else "; ".join(self.reasons) + f" ({self.summary})"


def scores(report: records.ReportSummary | None, suites: list[str]) -> dict[str, float]:
    """Accuracy per gated suite (a suite without a figure is missing, not zero)."""
    if report is None:
        return {}
    return {s: report.suites[s].accuracy for s in suites
            if s in report.suites and report.suites[s].accuracy is not None}


def _mean(values: dict[str, float], suites: list[str]) -> float | None:
    if not suites or any(s not in values for s in suites):
        return None
    return sum(values[s] for s in suites) / len(suites)


def gate(promotion: api.PromotionSpec, candidate: records.ReportSummary | None,
         current: dict[str, float] | None) -> Verdict:
    """`current` is the serving model's accuracy per suite (None when it has none: nothing to beat)."""
    names = [s.name for s in promotion.suites]
    cand = scores(candidate, names)
    reasons: list[str] = []
    if candidate is None or not candidate.complete:
        reasons.append("the candidate's evaluation is missing or incomplete")
    missing = [s for s in names if s not in cand]
    if missing:
        reasons.append(f"no accuracy for {', '.join(missing)}")
    g = promotion.gate
    for suite, minimum in g.min_accuracy.items():
        if suite in cand and cand[suite] < minimum:
            reasons.append(f"spec.promotion.gate.minAccuracy.{suite}: {cand[suite]:.3f} < {minimum}")
    mean_cand = _mean(cand, names)
    mean_cur = _mean(current or {}, names) if current else None
    if mean_cand is not None and mean_cur is not None and mean_cand < mean_cur + g.min_margin:
        reasons.append(f"spec.promotion.gate.minMargin: mean accuracy {mean_cand:.3f} does not beat the serving "
                       f"model's {mean_cur:.3f} by {g.min_margin}")
    if g.max_false_call_rate is not None and candidate is not None:
        for suite in names:
            rate = candidate.suites[suite].false_call_rate if suite in candidate.suites else None
            if rate is not None and rate > g.max_false_call_rate:
                reasons.append(f"spec.promotion.gate.maxFalseCallRate: {suite} false-call rate {rate:.3f} > "
                               f"{g.max_false_call_rate}")
    side = ", ".join(f"{s} {_fmt(cand.get(s))} vs {_fmt((current or {}).get(s))}" for s in names)
    summary = f"candidate vs serving: {side}"
    return Verdict(not reasons, tuple(reasons), summary)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
