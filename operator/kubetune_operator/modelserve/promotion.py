"""The promotion gate: may the candidate replace the serving model? One pure function, `gate`, decides for
the operator, `kubetune serve --against` and `kubetune gate`.

Its inputs are both sides' evaluations (and, for the serving objectives, benchmarks) as they come: the
file's bytes, a parsed object, what the status recorded (`api.Evaluation`, `api.BenchmarkResult`),
`Unreadable` when the caller could not get them, None when there is none; and `NO_SERVING_MODEL` on a first
rollout, the one case where nothing is compared. It fails closed: a report that is not one, an incomplete
evaluation, a gated suite missing on either side, or a figure the gate reads that is not a finite number
in [0, 1] (NaN, 7.5, true, "0.9") means not promoted, and the reason names the side, the suite, the field
and the value. The verdict holds one row per criterion with both sides' figures.

The criteria (`spec.promotion.gate`): a minimum accuracy per suite; a margin of the mean accuracy over
the serving model's; caps on the false- and missed-call rates of every gated suite; no suite, and no
category inside one, more than `maxRegression` below the serving model; and serving objectives read from
the candidate's own benchmark at `benchmarkConcurrency`: its TTFT p95, and its output tok/s as a share of
the serving revision's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
Evidence = bytes | str | Mapping[str, Any] | api.Evaluation | api.BenchmarkResult | Unreadable | None


@dataclass(frozen=True)
class Row:
    """One criterion: the threshold, both sides' figures, and why it failed."""

    criterion: str
    threshold: str
    candidate: str
    serving: str
    why: tuple[str, ...] = ()  # empty: passed

    @property
    def passed(self) -> bool:
        return not self.why

    @property
    def reason(self) -> str:
        return "; ".join(self.why)


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
        return tuple(dict.fromkeys(w for r in self.rows for w in r.why))

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


def _parse(evidence: Evidence, kind: str) -> tuple[Mapping[str, Any] | None, str | None]:
    """The file as an object, or why it is none."""
    if evidence is None:
        return None, "missing"
    if isinstance(evidence, Unreadable):
        return None, f"unreadable: {evidence.reason}"
    if isinstance(evidence, api.Evaluation):
        return evidence.report(), None
    if isinstance(evidence, api.BenchmarkResult):
        return evidence.levels(), None
    data: Any = evidence
    if isinstance(data, bytes | str):
        if len(data) > MAX_REPORT_BYTES:
            return None, f"{len(data)} bytes, more than the {MAX_REPORT_BYTES} a {kind} may hold"
        try:
            data = json.loads(data, object_pairs_hook=_unique_keys)
        except RecursionError:
            return None, f"not a {kind}: nested too deeply"
        except (ValueError, UnicodeDecodeError) as exc:
            return None, f"not JSON: {str(exc)[:200]}"
    if not isinstance(data, Mapping):
        return None, f"not a {kind}: a JSON {type(data).__name__}, not an object"
    return data, None


def _complete(obj: Mapping[str, Any], kind: str, listed: str, of: type) -> str | None:
    """Why `obj` is not a `kind` (a boolean `complete`, and `listed` of the type `of`), or None."""
    complete, found = obj.get("complete", _MISSING), obj.get(listed, _MISSING)
    if complete is _MISSING or not isinstance(complete, bool):
        return f"not a {kind}: no `complete`" if complete is _MISSING else \
            f"not a {kind}: `complete` is {_json_value(complete)}, not true or false"
    if not isinstance(found, of):
        return f"not a {kind}: no `{listed}`" if found is _MISSING else \
            f"not a {kind}: `{listed}` is {_json_value(found)}, not {'an object' if of is Mapping else 'a list'}"
    return None


def _drop(raw: Any, loc: tuple[Any, ...]) -> None:
    """Remove the value at `loc` (a pydantic error location) from nested dicts, where it is there."""
    for part in loc[:-1]:
        raw = raw.get(part) if isinstance(raw, dict) else None
    if isinstance(raw, dict):
        raw.pop(loc[-1], None)


def _strict(model: type[BaseModel], raw: Mapping[str, Any], where: str,
            bounds: str) -> tuple[BaseModel | None, dict[str, str]]:
    """`raw` as `model`, its invalid figures left out (None: a required one was invalid); each one's problem
    by its dotted path."""
    try:
        return model.model_validate(raw, by_alias=False, by_name=True), {}
    except ValidationError as exc:
        errors = exc.errors()
    problems: dict[str, str] = {}
    try:
        cleaned = json.loads(json.dumps(raw, default=str))  # a deep copy whose bad parts can be dropped
    except (RecursionError, ValueError):
        cleaned = {}
    for err in errors:
        path = ".".join(str(p) for p in err["loc"])
        problems.setdefault(path, f"{where}.{path} is {_json_value(err['input'])}, not {bounds}")
        _drop(cleaned, err["loc"])
    try:
        return model.model_validate(cleaned, by_alias=False, by_name=True), problems
    except ValidationError:
        return None, problems


class _Side:
    """What the gate reads of one side's evaluation: whether its report is usable and complete, and each
    gated figure (or why it cannot be used)."""

    def __init__(self, who: str, evidence: Evidence, suites: list[str]) -> None:
        self.who = who
        report, self.problem = _parse(evidence, "report")
        self.complete = False
        self.suites: dict[str, api.SuiteFigures] = {}
        self.problems: dict[tuple[str, str], str] = {}  # (suite, dotted field or "") -> why it cannot be used
        if report is None:
            return
        self.problem = _complete(report, "report", "suites", Mapping)
        if self.problem:
            return
        self.complete = report["complete"]
        found = report["suites"]
        for suite in suites:
            if suite not in found:
                others = ", ".join(sorted(map(str, found))[:8]) or "none"
                self.problems[suite, ""] = f"{self.who} has no suite {suite} (it has: {others})"
            elif not isinstance(found[suite], Mapping):
                self.problems[suite, ""] = f"{self.who}: suites.{suite} is {_json_value(found[suite])}, not an object"
            else:
                figures, bad = _strict(api.SuiteFigures, found[suite], f"{self.who}: suites.{suite}",
                                       "a finite number in [0, 1]")
                self.suites[suite] = figures if isinstance(figures, api.SuiteFigures) else api.SuiteFigures()
                self.problems.update({(suite, path): why for path, why in bad.items()})

    @property
    def usable(self) -> bool:
        return self.problem is None and self.complete

    def _why(self, suite: str, path: str) -> str | None:
        if self.problem:
            return f"{self.who} is unusable (see the evaluation row)"
        return self.problems.get((suite, "")) or self.problems.get((suite, path)) or next(
            (w for (s, p), w in self.problems.items() if s == suite and path.startswith(p + ".")), None)

    def figure(self, suite: str, name: str, category: str | None = None) -> tuple[float | None, str | None]:
        """A gated figure, or why it cannot be used; (None, None): the report says there is none."""
        path = name if category is None else f"categories.{category}.{name}"
        why = self._why(suite, path)
        if why:
            return None, why
        figures: api.GateFigures | None = self.suites[suite]
        if category is not None:
            figures = self.suites[suite].categories.get(category)
        return (getattr(figures, name) if figures is not None else None), None

    def categories(self, suite: str) -> list[str]:
        return sorted(self.suites[suite].categories) if suite in self.suites else []

    def cell(self, suite: str, name: str, category: str | None = None) -> str:
        value, why = self.figure(suite, name, category)
        if why:
            return "unusable" if self.problem else "invalid"
        return "–" if value is None else f"{value:.3f}"


class _Level(BaseModel):
    """The figures of one concurrency level of bench.json that the objectives read."""

    model_config = ConfigDict(extra="ignore", strict=True)
    concurrency: int
    failed: Annotated[int, Field(ge=0)] = 0
    output_throughput: api.Measured
    ttft_p95_s: api.Measured | None = None


class _Bench:
    """What the objectives read of one side's benchmark: its level at the named concurrency."""

    def __init__(self, who: str, evidence: Evidence, concurrency: int) -> None:
        self.who = who
        self.level: _Level | None = None
        self.problems: list[str] = []
        bench, problem = _parse(evidence, "benchmark")
        if bench is not None:
            problem = _complete(bench, "benchmark", "levels", list)
        self.unusable = problem is not None
        if bench is None or problem is not None:
            self.problems.append(f"{who}: {problem}")
            return
        if not bench["complete"]:
            self.problems.append(f"{who}: the sweep is incomplete (complete: false)")
        at = [lv for lv in bench["levels"] if isinstance(lv, Mapping) and lv.get("concurrency") == concurrency
              and type(lv.get("concurrency")) is int]
        if not at:
            self.problems.append(f"{who} has no level at concurrency {concurrency}")
            return
        level, bad = _strict(_Level, at[0], f"{who}: levels[concurrency={concurrency}]", "a finite number >= 0")
        self.problems += bad.values()
        self.level = level if isinstance(level, _Level) and not bad else None

    def state(self) -> str:
        if self.unusable:
            return "unusable"
        if self.level is None or self.problems:
            return "invalid"
        return f"{self.level.failed} failed" if self.level.failed else "complete"


# ---------------------------------------------------------------- the gate

def gate(promotion: api.PromotionSpec, candidate: Evidence, serving: Evidence | _NoServingModel,
         candidate_bench: Evidence = None, serving_bench: Evidence = None) -> Verdict:
    """Whether the candidate may replace the serving model (`NO_SERVING_MODEL`: none serves yet). The
    benchmarks are read only when the gate has serving objectives."""
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
            rows.append(Row(f"{suite} accuracy", f">= {minimum}", "not evaluated", "not evaluated",
                            (f"{GATE}.minAccuracy.{suite}: not one of spec.promotion.suites, so never evaluated",)))
    rows.append(_margin(names, cand_acc, serv_acc, serv, g.min_margin))
    if g.max_false_call_rate is not None:
        rows += _rate_rows("false-call rate", "false_call_rate", "maxFalseCallRate", "no-call", names, cand, serv,
                           g.max_false_call_rate)
    if g.max_missed_call_rate is not None:
        rows += _rate_rows("missed-call rate", "missed_call_rate", "maxMissedCallRate", "call", names, cand, serv,
                           g.max_missed_call_rate)
    if g.max_regression is not None:
        rows += _regression_rows(names, cand, serv, g.max_regression)
    unusable = cand.problem is not None or (serv is not None and serv.problem is not None)
    if g.objectives():
        bench_rows, bench_unusable = _objective_rows(g, candidate_bench, NO_SERVING_MODEL if first else serving_bench)
        rows += bench_rows
        unusable = unusable or bench_unusable
    summary = "candidate vs serving: " + ", ".join(
        f"{s} {cand.cell(s, 'accuracy')} vs {serv.cell(s, 'accuracy') if serv else '–'}" for s in names)
    if first:
        summary += " (no serving model yet: first rollout, nothing compared)"
    return Verdict(tuple(rows), compared=not first, unusable=unusable, summary=summary)


def evaluation_only(promotion: api.PromotionSpec) -> api.PromotionSpec:
    """The gate without its serving objectives: what can be decided before the candidate is benchmarked."""
    return promotion.model_copy(update={"gate": promotion.gate.model_copy(
        update={"max_ttft_p95_ms": None, "min_throughput_ratio": None})})


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
    if side.problems:
        return "invalid"
    return "complete" if side.complete else "incomplete"


def _reports(cand: _Side, serv: _Side | None) -> Row:
    """Both reports usable and complete, and no gated figure invalid (whichever criterion reads it)."""
    why = []
    for side in (cand, serv):
        if side is None:
            continue
        if side.problem:
            why.append(f"{side.who}: {side.problem}")
            continue
        if not side.complete:
            why.append(f"{side.who}: the evaluation is incomplete (complete: false): not every item got an answer")
        why += side.problems.values()
    threshold = "complete on both sides" if serv is not None else "complete"
    return Row("evaluation", threshold, _state(cand), _state(serv), tuple(why))


def _accuracy(suite: str, cand: _Side, serv: _Side | None,
              minimum: float | None) -> tuple[Row, float | None, float | None]:
    why = []
    values = []
    for side in (cand, serv):
        if side is None:
            values.append(None)
            continue
        value, problem = side.figure(suite, "accuracy")
        if problem is None and value is None:
            problem = f"{side.who}: suites.{suite}.accuracy is missing (a gated suite must have an accuracy)"
        if problem:
            why.append(problem)
        values.append(value if problem is None else None)
    c, s = values
    if c is not None and minimum is not None and c < minimum - EPSILON:
        why.append(f"{GATE}.minAccuracy.{suite}: the candidate's {c:.3f} < {minimum}")
    threshold = f">= {minimum}" if minimum is not None else "a number in [0, 1]"
    row = Row(f"{suite} accuracy", threshold, cand.cell(suite, "accuracy"),
              serv.cell(suite, "accuracy") if serv else "–", tuple(why))
    return row, c, s


def _mean(values: dict[str, float], names: list[str]) -> float | None:
    return sum(values[s] for s in names) / len(names) if names and all(s in values for s in names) else None


def _margin(names: list[str], cand: dict[str, float], serv: dict[str, float], serving: _Side | None,
            margin: float) -> Row:
    mc, ms = _mean(cand, names), _mean(serv, names)
    shown_c = "–" if mc is None else f"{mc:.3f}"
    threshold = f"beats serving by {margin}"
    if serving is None:
        return Row("mean accuracy", threshold, shown_c, "none (first rollout)",
                   () if mc is not None else ("the candidate's accuracy is missing or invalid on a gated suite",))
    shown_s = "–" if ms is None else f"{ms:.3f}"
    if mc is None or ms is None:
        return Row("mean accuracy", threshold, shown_c, shown_s,
                   (f"{GATE}.minMargin: not compared: " + ("the candidate's" if mc is None else "the serving model's")
                    + " accuracy is missing or invalid on a gated suite",))
    ok = mc - ms >= margin - EPSILON
    return Row("mean accuracy", threshold, shown_c, shown_s,
               () if ok else (f"{GATE}.minMargin: mean accuracy {mc:.3f} does not beat the serving model's {ms:.3f} "
                              f"by {margin}",))


def _rate_rows(label: str, name: str, setting: str, items: str, names: list[str], cand: _Side,
               serv: _Side | None, cap: float) -> list[Row]:
    """A cap on a rate per suite. A suite without `items` items has no such rate (unset on both sides);
    at least one gated suite must measure it."""
    rows = []
    measured = False
    for suite in names:
        c, problem = cand.figure(suite, name)
        why = [problem] if problem else []
        s, sproblem = serv.figure(suite, name) if serv else (None, None)
        if sproblem:
            why.append(sproblem)
        if c is not None:
            measured = True
            if c > cap + EPSILON:
                why.append(f"{GATE}.{setting}: {suite} {label} {c:.3f} > {cap}")
        elif not problem and s is not None:
            why.append(f"{cand.who}: suites.{suite}.{name} is missing where the serving model's report has one")
        rows.append(Row(f"{suite} {label}", f"<= {cap}", cand.cell(suite, name), serv.cell(suite, name) if serv else "–",
                        tuple(why)))
    if not measured and all(r.passed for r in rows):
        rows.append(Row(label, f"<= {cap}", "not measured", "–",
                        (f"{GATE}.{setting}: no gated suite has a {items} item, so the cap checks nothing",)))
    return rows


def _regression_rows(names: list[str], cand: _Side, serv: _Side | None, allowed: float) -> list[Row]:
    """No gated suite, and no category inside one, more than `allowed` below the serving model. A suite of
    one category (a BFCL one) is its category; a category on one side only means the two evaluations did not
    score the same items."""
    rows = []
    threshold = f">= serving - {allowed}"
    for suite in names:
        cats = sorted(set(cand.categories(suite)) | set(serv.categories(suite) if serv else []))
        for category in [None, *(cats if len(cats) > 1 else [])]:
            label = suite if category is None else f"{suite}/{category}"
            c, problem = cand.figure(suite, "accuracy", category)
            why = [problem] if problem else []
            if serv is None:
                rows.append(Row(f"{label} regression", threshold, cand.cell(suite, "accuracy", category),
                                "none (first rollout)", tuple(why)))
                continue
            s, sproblem = serv.figure(suite, "accuracy", category)
            if sproblem:
                why.append(sproblem)
            for side, value, p in ((cand, c, problem), (serv, s, sproblem)):
                if value is None and not p:
                    where = f"suites.{suite}" + (f".categories.{category}" if category else "")
                    why.append(f"{side.who}: {where}.accuracy is missing")
            if c is not None and s is not None and c < s - allowed - EPSILON:
                why.append(f"{GATE}.maxRegression: {label} accuracy {c:.3f} is {s - c:.3f} below the serving "
                           f"model's {s:.3f} (at most {allowed})")
            rows.append(Row(f"{label} regression", threshold, cand.cell(suite, "accuracy", category),
                            serv.cell(suite, "accuracy", category), tuple(dict.fromkeys(why))))
    return rows


def _objective_rows(g: api.PromotionGate, candidate: Evidence,
                    serving: Evidence | _NoServingModel) -> tuple[list[Row], bool]:
    """The serving objectives, from both sides' benchmarks at `benchmarkConcurrency` (on a first rollout
    there is no throughput to compare with)."""
    level = g.benchmark_concurrency
    if level is None:
        return [Row("serving objectives", "benchmarkConcurrency", "–", "–",
                    (f"{GATE}.benchmarkConcurrency: required with maxTTFTp95Ms and minThroughputRatio",))], True
    first = serving is NO_SERVING_MODEL
    cand = _Bench("the candidate's benchmark", candidate, level)
    serv = None if first or g.min_throughput_ratio is None else \
        _Bench("the serving model's benchmark", serving, level)  # type: ignore[arg-type]
    lv = cand.level
    failed = [f"the candidate's benchmark: {lv.failed} requests failed at concurrency {level}"] \
        if lv is not None and lv.failed else []
    rows = [Row(f"benchmark at concurrency {level}", "complete, no failed request", cand.state(),
                "none (first rollout)" if first else serv.state() if serv else "–",
                tuple(cand.problems + (serv.problems if serv else []) + failed))]
    if g.max_ttft_p95_ms is not None:
        ttft = lv.ttft_p95_s if lv is not None else None
        why = [] if lv is None or ttft is not None else [
            f"the candidate's benchmark: levels[concurrency={level}].ttft_p95_s is missing"]
        if lv is None:
            why.append("the candidate's benchmark cannot be read (see the benchmark row)")
        elif ttft is not None and ttft * 1000 > g.max_ttft_p95_ms + EPSILON:
            why.append(f"{GATE}.maxTTFTp95Ms: the candidate's TTFT p95 at concurrency {level} is "
                       f"{ttft * 1000:.0f} ms > {g.max_ttft_p95_ms:g}")
        rows.append(Row(f"TTFT p95 at concurrency {level}", f"<= {g.max_ttft_p95_ms:g} ms",
                        "–" if ttft is None else f"{ttft * 1000:.0f} ms", "–", tuple(why)))
    if g.min_throughput_ratio is not None:
        ratio = g.min_throughput_ratio
        c = lv.output_throughput if lv is not None else None
        why = [] if lv is not None else ["the candidate's benchmark cannot be read (see the benchmark row)"]
        if serv is None:
            rows.append(Row(f"output tok/s at concurrency {level}", f">= {ratio:g} x serving",
                            "–" if c is None else f"{c:.1f}", "none (first rollout)", tuple(why)))
        else:
            s = serv.level.output_throughput if serv.level is not None else None
            if s is None:
                why.append("the serving model's benchmark cannot be read (see the benchmark row)")
            elif s <= 0:
                why.append(f"the serving model's benchmark: output tok/s at concurrency {level} is 0: nothing "
                           "to compare with")
            elif c is not None and c < ratio * s - EPSILON:
                why.append(f"{GATE}.minThroughputRatio: the candidate's {c:.1f} output tok/s at concurrency "
                           f"{level} is {c / s:.2f} x the serving model's {s:.1f} (at least {ratio:g})")
            rows.append(Row(f"output tok/s at concurrency {level}", f">= {ratio:g} x serving",
                            "–" if c is None else f"{c:.1f}", "–" if s is None else f"{s:.1f}", tuple(why)))
    return rows, cand.unusable or bool(serv and serv.unusable)
