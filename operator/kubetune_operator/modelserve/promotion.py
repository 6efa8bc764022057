"""The promotion gate: may the candidate replace the serving model? One pure function, `gate`, decides for
the operator, `kubetune serve --against` and `kubetune gate`.

Its inputs are both sides' evaluations as they come (report.json bytes, a parsed object, a recorded
`api.Evaluation`, `Unreadable` when the caller could not get them, None when there is none) and
`NO_SERVING_MODEL` on a first rollout, the one case where nothing is compared. It fails closed: a report
that is not one, an incomplete evaluation, a gated suite missing on either side, or a figure the gate reads
that is not a finite number in [0, 1] (NaN, 7.5, true, "0.9") means not promoted, and the reason names the
side, the suite, the field and the value. The verdict holds one row per criterion with both sides' figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..apitypes import shown
from . import api

# The most of a report.json the gate reads: it holds every item scored (~600 bytes each), so 16 MiB is
# ~25,000 items, seven times all the BFCL categories evaluate knows together.
MAX_REPORT_BYTES = 16 * 2**20
# Figures are shares of item counts: two that differ by less than this are equal (0.3 - 0.1 >= 0.2 holds).
EPSILON = 1e-9
GATE = "spec.promotion.gate"
_MISSING = object()


@dataclass(frozen=True)
class Unreadable:
    """The caller could not get a side's report (a store error, a file it cannot open): why."""

    reason: str


class _NoServingModel:
    def __repr__(self) -> str:
        return "NO_SERVING_MODEL"


NO_SERVING_MODEL = _NoServingModel()  # the first rollout: there is no serving model to compare with
Evidence = bytes | str | Mapping[str, Any] | api.Evaluation | Unreadable | None


@dataclass(frozen=True)
class Row:
    """One criterion: the threshold, both sides' figures, and why it failed."""

    criterion: str
    threshold: str
    candidate: str
    serving: str
    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class Verdict:
    rows: tuple[Row, ...]
    compared: bool  # False on a first rollout only
    unusable: bool  # an input is not an evaluation report at all (the command line's exit 2)
    summary: str = ""  # the accuracies side by side

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.reason for r in self.rows if not r.passed))

    @property
    def message(self) -> str:
        """Why (when it failed), the accuracies side by side, then every row: for the status and the Event."""
        rows = "; ".join(f"{r.criterion} {r.threshold}: {r.candidate} vs {r.serving} {'pass' if r.passed else 'FAIL'}"
                         for r in self.rows)
        head = self.summary if self.passed else "; ".join(self.reasons) + f" ({self.summary})"
        return f"{head} | {rows}"

    def table(self) -> str:
        """The rows as a text table (what the command line prints)."""
        header = ("criterion", "threshold", "candidate", "serving", "result")
        body = [(r.criterion, r.threshold, r.candidate, r.serving, "pass" if r.passed else "FAIL") for r in self.rows]
        widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in [header, *body]]
        lines += [f"  {r.criterion}: {r.reason}" for r in self.rows if not r.passed]
        return "\n".join(lines)


# ---------------------------------------------------------------- reading one side

def _json_value(value: Any) -> str:
    """A value as it reads in JSON (NaN, true, "0.9"), clipped."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 64 else text[:40] + f"…({len(text)} characters)"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"key {shown(twice[0])} is given twice")
    return dict(pairs)


def _parse(evidence: Evidence) -> tuple[Mapping[str, Any] | None, str | None]:
    """The report as an object, or why it is none."""
    if evidence is None:
        return None, "missing"
    if isinstance(evidence, Unreadable):
        return None, f"unreadable: {evidence.reason}"
    if isinstance(evidence, api.Evaluation):
        return evidence.report(), None
    data: Any = evidence
    if isinstance(data, bytes | str):
        if len(data) > MAX_REPORT_BYTES:
            return None, f"{len(data)} bytes, more than the {MAX_REPORT_BYTES} a report may hold"
        try:
            data = json.loads(data, object_pairs_hook=_unique_keys)
        except RecursionError:
            return None, "not a report: nested too deeply"
        except (ValueError, UnicodeDecodeError) as exc:
            return None, f"not JSON: {str(exc)[:200]}"
    if not isinstance(data, Mapping):
        return None, f"not a report: a JSON {type(data).__name__}, not an object"
    return data, None


class _Side:
    """What the gate reads of one side: whether its report is usable and complete, and each gated figure."""

    def __init__(self, who: str, evidence: Evidence, suites: list[str]) -> None:
        self.who = who
        report, self.problem = _parse(evidence)
        self.complete = False
        self.suites: dict[str, api.GateFigures] = {}
        self.problems: dict[tuple[str, str], str] = {}  # (suite, field or "") -> why it cannot be used
        if report is None:
            return
        complete, found = report.get("complete", _MISSING), report.get("suites", _MISSING)
        if complete is _MISSING or not isinstance(complete, bool):
            self.problem = "not a report: no `complete`" if complete is _MISSING else \
                f"not a report: `complete` is {_json_value(complete)}, not true or false"
            return
        if not isinstance(found, Mapping):
            self.problem = "not a report: no `suites`" if found is _MISSING else \
                f"not a report: `suites` is {_json_value(found)}, not an object"
            return
        self.complete = complete
        for suite in suites:
            if suite not in found:
                others = ", ".join(sorted(map(str, found))[:8]) or "none"
                self.problems[suite, ""] = f"{self.who} has no suite {suite} (it has: {others})"
            else:
                self._read_suite(suite, found[suite])

    def _read_suite(self, suite: str, raw: Any) -> None:
        if not isinstance(raw, Mapping):
            self.problems[suite, ""] = f"{self.who}: suites.{suite} is {_json_value(raw)}, not an object"
            return
        try:
            self.suites[suite] = api.GateFigures.model_validate(raw, by_alias=False, by_name=True)
            return
        except ValidationError as exc:
            bad = {str(err["loc"][0]) for err in exc.errors()}
            for err in exc.errors():
                name = str(err["loc"][0])
                self.problems.setdefault((suite, name), f"{self.who}: suites.{suite}.{name} is "
                                         f"{_json_value(err['input'])}, not a finite number in [0, 1]")
        self.suites[suite] = api.GateFigures.model_validate({k: v for k, v in raw.items() if k not in bad},
                                                            by_alias=False, by_name=True)

    @property
    def usable(self) -> bool:
        return self.problem is None and self.complete

    def figure(self, suite: str, name: str) -> tuple[float | None, str | None]:
        """A gated figure, or why it cannot be used; (None, None): the report says the suite has none."""
        why = self.problem and f"{self.who} is unusable (see the evaluation row)"
        why = why or self.problems.get((suite, "")) or self.problems.get((suite, name))
        if why:
            return None, why
        return getattr(self.suites[suite], name), None

    def cell(self, suite: str, name: str) -> str:
        value, why = self.figure(suite, name)
        if why:
            return "unusable" if self.problem else "invalid"
        return "–" if value is None else f"{value:.3f}"


# ---------------------------------------------------------------- the gate

def gate(promotion: api.PromotionSpec, candidate: Evidence, serving: Evidence | _NoServingModel) -> Verdict:
    """Whether the candidate may replace the serving model (`NO_SERVING_MODEL`: none serves yet)."""
    names = [s.name for s in promotion.suites]
    g = promotion.gate
    cand = _Side("the candidate's report", candidate, names)
    first = serving is NO_SERVING_MODEL
    serv = None if first else _Side("the serving model's report", serving, names)  # type: ignore[arg-type]
    rows = [_reports(cand, serv)]
    cand_acc: dict[str, float] = {}
    serv_acc: dict[str, float] = {}
    for suite in names:
        row, c, s = _accuracy(suite, cand, serv, g.min_accuracy.get(suite))
        rows.append(row)
        if c is not None:
            cand_acc[suite] = c
        if s is not None:
            serv_acc[suite] = s
    for suite, minimum in g.min_accuracy.items():
        if suite not in names:
            rows.append(Row(f"{suite} accuracy", f">= {minimum}", "not evaluated", "not evaluated", False,
                            f"{GATE}.minAccuracy.{suite}: not one of spec.promotion.suites, so never evaluated"))
    rows.append(_margin(names, cand_acc, serv_acc, serv, g.min_margin))
    if g.max_false_call_rate is not None:
        rows += _rate_rows("false-call rate", "false_call_rate", "maxFalseCallRate", "no-call", names, cand, serv,
                           g.max_false_call_rate)
    unusable = cand.problem is not None or (serv is not None and serv.problem is not None)
    summary = "candidate vs serving: " + ", ".join(
        f"{s} {cand.cell(s, 'accuracy')} vs {serv.cell(s, 'accuracy') if serv else '–'}" for s in names)
    if first:
        summary += " (no serving model yet: first rollout, nothing compared)"
    return Verdict(tuple(rows), compared=not first, unusable=unusable, summary=summary)


def evaluation(promotion: api.PromotionSpec, revision: str, digest: str, evidence: Evidence) -> api.Evaluation | None:
    """What to record of a revision's evaluation (to reuse while the suites stay the same): only a complete
    report with every gated figure usable; None otherwise (the gate then says why)."""
    names = [s.name for s in promotion.suites]
    side = _Side("report", evidence, names)
    if not side.usable or side.problems or any(side.suites[s].accuracy is None for s in names):
        return None
    return api.Evaluation(revision=revision, suites_digest=digest, complete=True,
                          suites={s: side.suites[s] for s in names})


def _state(side: _Side | None) -> str:
    if side is None:
        return "none (first rollout)"
    if side.problem:
        return "unusable"
    return "complete" if side.complete else "incomplete"


def _reports(cand: _Side, serv: _Side | None) -> Row:
    reasons = []
    for side in (cand, serv):
        if side is None:
            continue
        if side.problem:
            reasons.append(f"{side.who}: {side.problem}")
        elif not side.complete:
            reasons.append(f"{side.who}: the evaluation is incomplete (complete: false): not every item got an answer")
    threshold = "complete on both sides" if serv is not None else "complete"
    return Row("evaluation", threshold, _state(cand), _state(serv), not reasons, "; ".join(reasons))


def _accuracy(suite: str, cand: _Side, serv: _Side | None,
              minimum: float | None) -> tuple[Row, float | None, float | None]:
    reasons = []
    values = []
    for side in (cand, serv):
        if side is None:
            values.append(None)
            continue
        value, why = side.figure(suite, "accuracy")
        if why is None and value is None:
            why = f"{side.who}: suites.{suite}.accuracy is missing (a gated suite must have an accuracy)"
        if why:
            reasons.append(why)
        values.append(value if why is None else None)
    c, s = values
    if c is not None and minimum is not None and c < minimum - EPSILON:
        reasons.append(f"{GATE}.minAccuracy.{suite}: the candidate's {c:.3f} < {minimum}")
    threshold = f">= {minimum}" if minimum is not None else "a number in [0, 1]"
    row = Row(f"{suite} accuracy", threshold, cand.cell(suite, "accuracy"),
              serv.cell(suite, "accuracy") if serv else "–", not reasons and c is not None,
              "; ".join(dict.fromkeys(reasons)) or "see the evaluation row")
    return row, c, s


def _mean(values: dict[str, float], names: list[str]) -> float | None:
    return sum(values[s] for s in names) / len(names) if names and all(s in values for s in names) else None


def _margin(names: list[str], cand: dict[str, float], serv: dict[str, float], serving: _Side | None,
            margin: float) -> Row:
    mc, ms = _mean(cand, names), _mean(serv, names)
    shown_c = "–" if mc is None else f"{mc:.3f}"
    if serving is None:
        return Row("mean accuracy", f"beats serving by {margin}", shown_c, "none (first rollout)", mc is not None,
                   "" if mc is not None else "the candidate's accuracy is missing or invalid on a gated suite")
    shown_s = "–" if ms is None else f"{ms:.3f}"
    if mc is None or ms is None:
        return Row("mean accuracy", f"beats serving by {margin}", shown_c, shown_s, False,
                   f"{GATE}.minMargin: not compared: " + ("the candidate's" if mc is None else "the serving model's")
                   + " accuracy is missing or invalid on a gated suite")
    ok = mc - ms >= margin - EPSILON
    return Row("mean accuracy", f"beats serving by {margin}", shown_c, shown_s, ok,
               "" if ok else f"{GATE}.minMargin: mean accuracy {mc:.3f} does not beat the serving model's {ms:.3f} "
                             f"by {margin}")


def _rate_rows(label: str, name: str, setting: str, items: str, names: list[str], cand: _Side,
               serv: _Side | None, cap: float) -> list[Row]:
    """A cap on a rate per suite. A suite without `items` items has no such rate (unset on both sides);
    at least one gated suite must measure it."""
    rows = []
    measured = False
    for suite in names:
        c, why = cand.figure(suite, name)
        reasons = [why] if why else []
        s, swhy = serv.figure(suite, name) if serv else (None, None)
        if swhy:
            reasons.append(swhy)
        if c is not None:
            measured = True
            if c > cap + EPSILON:
                reasons.append(f"{GATE}.{setting}: {suite} {label} {c:.3f} > {cap}")
        elif not why and s is not None:
            reasons.append(f"{cand.who}: suites.{suite}.{name} is missing where the serving model's report has one")
        rows.append(Row(f"{suite} {label}", f"<= {cap}", cand.cell(suite, name), serv.cell(suite, name) if serv else "–",
                        not reasons, "; ".join(reasons)))
    if not measured and all(r.passed for r in rows):
        rows.append(Row(label, f"<= {cap}", "not measured", "–", False,
                        f"{GATE}.{setting}: no gated suite has a {items} item, so the cap checks nothing"))
    return rows
