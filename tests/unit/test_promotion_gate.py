"""The promotion gate, pure: every way a report can be wrong means not promoted, with the side, the suite,
the field and the value named; a first rollout is the only verdict that compares nothing; a recorded
evaluation is read as the report it came from.

The gate of the issue that found the gate failing open: minAccuracy seed-tools 0.5, minMargin 0.05,
maxFalseCallRate 0.1, the serving model scoring 0.60.
"""

from __future__ import annotations

import json
import math

import pytest

from kubetune_operator.modelserve import api, promotion
from kubetune_operator.modelserve.promotion import NO_SERVING_MODEL, Unreadable, gate

PROMOTION = api.PromotionSpec.model_validate(
    {"enabled": True, "suites": [{"name": "seed-tools"}],
     "gate": {"minAccuracy": {"seed-tools": 0.5}, "minMargin": 0.05, "maxFalseCallRate": 0.1}}, by_alias=True)


def report(accuracy: str = "0.7", false_call_rate: str = "0.0", complete: str = "true", suite: str = "seed-tools",
           extra: str = "") -> bytes:
    """report.json as written, each figure a raw JSON token (so NaN, true, "0.9" are what the file holds)."""
    return (f'{{"complete": {complete}, "items": [], "suites": {{"{suite}": {{"items": 10, "accuracy": {accuracy}, '
            f'"false_call_rate": {false_call_rate}, "perplexity": null{extra}}}}}}}').encode()


SERVING = report("0.6")
GOOD = report("0.7")


def test_a_better_candidate_passes_with_every_criterion_shown() -> None:
    v = gate(PROMOTION, GOOD, SERVING)
    assert v.passed and v.compared and not v.unusable and v.reasons == ()
    rows = {r.criterion: r for r in v.rows}
    assert (rows["seed-tools accuracy"].candidate, rows["seed-tools accuracy"].serving) == ("0.700", "0.600")
    assert rows["mean accuracy"].passed and rows["seed-tools false-call rate"].threshold == "<= 0.1"
    assert set(rows) == {"evaluation", "seed-tools accuracy", "mean accuracy", "seed-tools false-call rate"}
    assert "0.700 vs 0.600" in v.message and "seed-tools false-call rate" in v.table()


@pytest.mark.parametrize(("token", "shown"), [
    ("NaN", "NaN"), ("7.5", "7.5"), ("true", "true"), ('"0.9"', '"0.9"'), ("Infinity", "Infinity"),
    ("-0.1", "-0.1"), ("null", None), ("[0.9]", "[0.9]"),
])
def test_a_candidate_accuracy_that_is_not_a_finite_number_in_0_1_is_rejected_naming_it(token: str,
                                                                                    shown: str | None) -> None:
    v = gate(PROMOTION, report(token), SERVING)
    assert not v.passed and not v.unusable
    why = "; ".join(v.reasons)
    if shown is None:
        assert "the candidate's report: suites.seed-tools.accuracy is missing" in why
    else:
        assert f"the candidate's report: suites.seed-tools.accuracy is {shown}, not a finite number in [0, 1]" in why
    assert next(r for r in v.rows if r.criterion == "seed-tools accuracy").candidate in ("invalid", "–")


@pytest.mark.parametrize("token", ["NaN", "1.5", "true", '"0.05"'])
def test_a_false_call_rate_that_is_not_a_number_is_rejected(token: str) -> None:
    v = gate(PROMOTION, report(false_call_rate=token), SERVING)
    assert not v.passed
    assert f"the candidate's report: suites.seed-tools.false_call_rate is {token}" in "; ".join(v.reasons)
    row = next(r for r in v.rows if r.criterion == "seed-tools false-call rate")
    assert not row.passed and row.candidate == "invalid"


def test_a_false_call_rate_over_the_cap_is_rejected() -> None:
    v = gate(PROMOTION, report(false_call_rate="0.25"), SERVING)
    assert not v.passed and "spec.promotion.gate.maxFalseCallRate: seed-tools false-call rate 0.250 > 0.1" in v.reasons


@pytest.mark.parametrize(("serving", "why"), [
    (b"\x00garbage", "the serving model's report: not JSON"),
    (json.dumps({"complete": True, "endpoint": "http://x/v1", "model": "m", "max_tokens": 64, "levels": []}).encode(),
     "the serving model's report: not a report: no `suites`"),
    (report("null"), "the serving model's report: suites.seed-tools.accuracy is missing"),
    (report("NaN"), "the serving model's report: suites.seed-tools.accuracy is NaN"),
    (report("-Infinity"), "the serving model's report: suites.seed-tools.accuracy is -Infinity"),
    (report("0.6", suite="bfcl-simple_python"), "the serving model's report has no suite seed-tools (it has: "
                                                "bfcl-simple_python)"),
    (report("0.6", complete="false"), "the serving model's report: the evaluation is incomplete"),
    (report("0.6", complete='"yes"'), 'the serving model\'s report: not a report: `complete` is "yes"'),
    (None, "the serving model's report: missing"),
    (Unreadable("reading s3://b/r.json: ConnectionError"), "the serving model's report: unreadable: reading "
                                                          "s3://b/r.json: ConnectionError"),
    (b"[1, 2]", "the serving model's report: not a report: a JSON list, not an object"),
])
def test_a_serving_report_that_cannot_be_compared_with_rejects_any_candidate(serving: promotion.Evidence,
                                                                              why: str) -> None:
    v = gate(PROMOTION, report("0.95"), serving)
    assert not v.passed and v.compared
    assert any(r.startswith(why) for r in v.reasons), v.reasons
    assert any(not r.passed for r in v.rows if r.criterion in ("evaluation", "seed-tools accuracy"))


@pytest.mark.parametrize(("candidate", "why"), [
    (None, "the candidate's report: missing"),
    (b"not json", "the candidate's report: not JSON"),
    (b'{"complete": true, "suites": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     "the candidate's report: not a report: nested too deeply"),
    (b" " * (promotion.MAX_REPORT_BYTES + 1), "the candidate's report: "),
    (b'{"complete": true, "complete": false, "suites": {}}', "the candidate's report: not JSON: key 'complete' is "
                                                            "given twice"),
    (b'"a string"', "the candidate's report: not a report: a JSON str, not an object"),
])
def test_what_is_not_a_report_at_all_is_unusable(candidate: promotion.Evidence, why: str) -> None:
    v = gate(PROMOTION, candidate, SERVING)
    assert not v.passed and v.unusable
    assert any(r.startswith(why) for r in v.reasons), v.reasons
    assert next(r for r in v.rows if r.criterion == "evaluation").candidate == "unusable"


def test_an_incomplete_candidate_evaluation_is_rejected_even_with_good_figures() -> None:
    v = gate(PROMOTION, report("0.9", complete="false"), SERVING)
    assert not v.passed and not v.unusable
    assert v.reasons == ("the candidate's report: the evaluation is incomplete (complete: false): not every item "
                         "got an answer",)


def test_a_gated_suite_missing_from_the_candidate_is_rejected() -> None:
    v = gate(PROMOTION, report("0.9", suite="bfcl-multiple"), SERVING)
    assert not v.passed and "the candidate's report has no suite seed-tools (it has: bfcl-multiple)" in v.reasons


def test_a_deeply_nested_figure_is_invalid_not_a_crash() -> None:
    v = gate(PROMOTION, report("[" * 500 + "]" * 500), SERVING)
    assert not v.passed and "suites.seed-tools.accuracy is [[[[" in "; ".join(v.reasons)


def test_the_first_rollout_compares_nothing_and_says_so_but_still_checks_the_candidate() -> None:
    v = gate(PROMOTION, GOOD, NO_SERVING_MODEL)
    assert v.passed and not v.compared and "first rollout" in v.summary and "nothing compared" in v.message
    assert next(r for r in v.rows if r.criterion == "mean accuracy").serving == "none (first rollout)"
    for bad, why in ((report("NaN"), "accuracy is NaN"), (report("0.4"), "minAccuracy.seed-tools: the candidate's "
                                                                          "0.400 < 0.5"),
                     (report(false_call_rate="0.5"), "maxFalseCallRate")):
        v = gate(PROMOTION, bad, NO_SERVING_MODEL)
        assert not v.passed and not v.compared and why in "; ".join(v.reasons)


def test_a_missing_serving_report_is_not_a_first_rollout() -> None:
    assert not gate(PROMOTION, GOOD, None).passed


def test_the_margin_is_met_exactly_despite_floating_point() -> None:
    """0.1 + 0.2 is 0.30000000000000004 in binary floating point: a candidate exactly `minMargin` better passes."""
    p = PROMOTION.model_copy(update={"gate": api.PromotionGate(min_margin=0.2)})
    assert gate(p, report("0.3"), report("0.1")).passed
    assert not gate(p, report("0.299"), report("0.1")).passed


def test_a_suite_without_no_call_items_has_no_false_call_rate_but_one_gated_suite_must_measure_it() -> None:
    two = api.PromotionSpec.model_validate(
        {"enabled": True, "suites": [{"name": "seed-tools"}, {"name": "bfcl-simple_python"}],
         "gate": {"maxFalseCallRate": 0.1}}, by_alias=True)

    def both(fcr_simple: str, fcr_seed: str = "0.0") -> bytes:
        return json.dumps({"complete": True, "suites": {
            "seed-tools": {"accuracy": 0.7, "false_call_rate": json.loads(fcr_seed)},
            "bfcl-simple_python": {"accuracy": 0.7, "false_call_rate": json.loads(fcr_simple)}}}).encode()

    v = gate(two, both("null"), both("null"))
    assert v.passed, v.reasons
    assert next(r for r in v.rows if r.criterion == "bfcl-simple_python false-call rate").candidate == "–"
    # None measured on any gated suite: the cap checks nothing, which is no pass.
    v = gate(two, both("null", "null"), both("null", "null"))
    assert not v.passed and "no gated suite has a no-call item" in "; ".join(v.reasons)
    # Measured for the serving model on the same suite, absent for the candidate: not the same evaluation.
    v = gate(two, both("null"), both("0.0"))
    assert not v.passed and "suites.bfcl-simple_python.false_call_rate is missing where the serving" in v.reasons[0]


def test_a_threshold_on_a_suite_not_evaluated_fails_closed() -> None:
    p = PROMOTION.model_copy(update={"gate": PROMOTION.gate.model_copy(
        update={"min_accuracy": {"seed-tools": 0.5, "bfcl-multiple": 0.9}})})
    v = gate(p, GOOD, SERVING)
    assert not v.passed and "minAccuracy.bfcl-multiple: not one of spec.promotion.suites" in v.reasons[0]


def test_a_recorded_evaluation_is_read_as_the_report_it_came_from() -> None:
    recorded = promotion.evaluation(PROMOTION, "r1", "abcd", SERVING)
    assert recorded is not None and recorded.suites["seed-tools"].accuracy == 0.6
    assert recorded.suites["seed-tools"].false_call_rate == 0.0
    for cand in (GOOD, report("0.62"), report("NaN")):
        assert gate(PROMOTION, cand, recorded).rows == gate(PROMOTION, cand, SERVING).rows
    # Only a report the gate can use is recorded: never a NaN, an incomplete evaluation or a missing suite.
    for bad in (report("NaN"), report("0.6", complete="false"), report("0.6", suite="chat"), report("null"),
                report(false_call_rate="NaN"), b"{}", None):
        assert promotion.evaluation(PROMOTION, "r1", "abcd", bad) is None


# ---------------------------------------------------------------- the balanced gate

def balanced(**gate) -> api.PromotionSpec:
    return api.PromotionSpec.model_validate(
        {"enabled": True, "suites": [{"name": "seed-tools"}, {"name": "bfcl-irrelevance"}], "gate": gate},
        by_alias=True)


def evaluated(seed: float, irrelevance: float, categories: dict | None = None, missed: float | None = 0.1,
              false_call: float | None = 0.0) -> bytes:
    """A report of seed-tools (with its categories) and BFCL irrelevance (no call item: no missed-call rate)."""
    cats = categories if categories is not None else {"multiple": seed, "no_call": seed, "parallel_multiple": seed}
    return json.dumps({"complete": True, "suites": {
        "seed-tools": {"accuracy": seed, "false_call_rate": false_call, "missed_call_rate": missed,
                       "categories": {c: {"accuracy": a} for c, a in cats.items()}},
        "bfcl-irrelevance": {"accuracy": irrelevance, "false_call_rate": 1 - irrelevance, "missed_call_rate": None,
                             "categories": {"irrelevance": {"accuracy": irrelevance}}}}}).encode()


def test_max_missed_call_rate_caps_calls_not_made_where_one_was_wanted() -> None:
    p = balanced(maxMissedCallRate=0.2)
    assert gate(p, evaluated(0.8, 0.8, missed=0.1), evaluated(0.6, 0.6)).passed
    v = gate(p, evaluated(0.8, 0.8, missed=0.45), evaluated(0.6, 0.6))
    assert not v.passed and v.reasons == ("spec.promotion.gate.maxMissedCallRate: seed-tools missed-call rate "
                                          "0.450 > 0.2",)
    row = next(r for r in v.rows if r.criterion == "bfcl-irrelevance missed-call rate")
    assert row.passed and row.candidate == "–", "irrelevance has no call item: no such rate"
    v = gate(p, evaluated(0.8, 0.8, missed=math.nan), evaluated(0.6, 0.6))
    assert not v.passed and "suites.seed-tools.missed_call_rate is NaN" in v.reasons[0]


def test_max_regression_refuses_a_suite_that_falls_even_when_the_mean_rises() -> None:
    """The published failure: tool accuracy up, irrelevance (knowing when not to call) down."""
    p = balanced(minMargin=0.0, maxRegression=0.05)
    v = gate(p, evaluated(0.95, 0.50), evaluated(0.60, 0.70))
    assert next(r for r in v.rows if r.criterion == "mean accuracy").passed, "the mean rose: 0.725 vs 0.650"
    assert not v.passed
    assert v.reasons == ("spec.promotion.gate.maxRegression: bfcl-irrelevance accuracy 0.500 is 0.200 below the "
                         "serving model's 0.700 (at most 0.05)",)
    assert gate(p, evaluated(0.95, 0.66), evaluated(0.60, 0.70)).passed, "within 0.05"


def test_max_regression_refuses_a_category_that_falls_inside_a_suite_that_rises() -> None:
    p = balanced(maxRegression=0.1)
    serving = evaluated(0.60, 0.7, {"multiple": 0.5, "no_call": 0.9, "parallel_multiple": 0.4})
    worse_no_call = evaluated(0.70, 0.7, {"multiple": 0.9, "no_call": 0.5, "parallel_multiple": 0.7})
    v = gate(p, worse_no_call, serving)
    assert not v.passed and v.reasons == ("spec.promotion.gate.maxRegression: seed-tools/no_call accuracy 0.500 is "
                                          "0.400 below the serving model's 0.900 (at most 0.1)",)
    rows = {r.criterion for r in v.rows}
    assert {"seed-tools/multiple regression", "seed-tools/no_call regression"} <= rows
    assert "bfcl-irrelevance/irrelevance regression" not in rows, "a one-category suite is its category"
    # A category on one side only: the two evaluations did not score the same items.
    v = gate(p, evaluated(0.7, 0.7, {"multiple": 0.9, "parallel_multiple": 0.7}), serving)
    assert not v.passed and "the candidate's report: suites.seed-tools.categories.no_call.accuracy is missing" in \
        v.reasons
    v = gate(p, evaluated(0.7, 0.7, {"multiple": 0.9, "no_call": math.inf, "parallel_multiple": 0.7}), serving)
    assert not v.passed and "suites.seed-tools.categories.no_call.accuracy is Infinity" in "; ".join(v.reasons)


def test_regression_on_a_first_rollout_compares_nothing() -> None:
    v = gate(balanced(maxRegression=0.0), evaluated(0.5, 0.5), NO_SERVING_MODEL)
    assert v.passed and all(r.serving == "none (first rollout)" for r in v.rows if "regression" in r.criterion)


def bench(ttft: float | str = 0.2, throughput: float | str = 100.0, failed: int = 0, concurrency: int = 8,
          complete: bool = True) -> bytes:
    """bench.json as `kubetune-job bench` writes it (figures as raw JSON tokens when given as strings)."""
    level = {"concurrency": concurrency, "completed": 16 - failed, "failed": failed, "duration_s": 3.0,
             "request_throughput": 5.0, "output_tokens": 1024, "output_throughput": "__T__", "ttft_p95_s": "__F__"}
    text = json.dumps({"complete": complete, "endpoint": "http://x/v1", "model": "m", "max_tokens": 64, "levels": [
        {**level, "concurrency": 1, "output_throughput": 20.0, "ttft_p95_s": 0.05}, level]})
    return text.replace('"__T__"', str(throughput)).replace('"__F__"', str(ttft)).encode()


def test_max_ttft_p95_reads_the_candidates_own_benchmark_at_the_named_concurrency() -> None:
    p = balanced(maxTTFTp95Ms=500, benchmarkConcurrency=8)
    good, serving = evaluated(0.7, 0.7), evaluated(0.6, 0.6)
    assert gate(p, good, serving, bench(ttft=0.3), bench()).passed
    v = gate(p, good, serving, bench(ttft=0.8), bench())
    assert not v.passed and v.reasons == ("spec.promotion.gate.maxTTFTp95Ms: the candidate's TTFT p95 at concurrency "
                                          "8 is 800 ms > 500",)
    row = next(r for r in v.rows if r.criterion == "TTFT p95 at concurrency 8")
    assert (row.threshold, row.candidate) == ("<= 500 ms", "800 ms")
    for candidate_bench, why in ((bench(ttft="NaN"), "levels[concurrency=8].ttft_p95_s is NaN"),
                                 (bench(ttft="null"), "levels[concurrency=8].ttft_p95_s is missing"),
                                 (bench(concurrency=4), "the candidate's benchmark has no level at concurrency 8"),
                                 (bench(failed=3), "3 requests failed at concurrency 8"),
                                 (bench(complete=False), "the sweep is incomplete"),
                                 (bench(throughput='"fast"'), 'output_throughput is "fast"')):
        v = gate(p, good, serving, candidate_bench, bench())
        assert not v.passed and not v.unusable and why in "; ".join(v.reasons), (why, v.reasons)
    v = gate(p, good, serving, None, bench())
    assert not v.passed and v.unusable and "the candidate's benchmark: missing" in v.reasons
    assert not gate(p, good, serving, b"[]", bench()).passed


def test_min_throughput_ratio_compares_with_the_serving_revisions_benchmark() -> None:
    p = balanced(minThroughputRatio=0.9, benchmarkConcurrency=8)
    good, serving = evaluated(0.7, 0.7), evaluated(0.6, 0.6)
    assert gate(p, good, serving, bench(throughput=95.0), bench(throughput=100.0)).passed
    v = gate(p, good, serving, bench(throughput=80.0), bench(throughput=100.0))
    assert not v.passed and v.reasons == ("spec.promotion.gate.minThroughputRatio: the candidate's 80.0 output tok/s "
                                          "at concurrency 8 is 0.80 x the serving model's 100.0 (at least 0.9)",)
    for serving_bench, why in ((None, "the serving model's benchmark: missing"),
                               (bench(throughput="-Infinity"), "output_throughput is -Infinity"),
                               (bench(throughput=0.0), "is 0: nothing to compare with"),
                               (bench(concurrency=1), "the serving model's benchmark has no level at concurrency 8")):
        v = gate(p, good, serving, bench(throughput=200.0), serving_bench)
        assert not v.passed and why in "; ".join(v.reasons), (why, v.reasons)
    # The status' record of the serving benchmark is read as its bench.json is.
    recorded = api.BenchmarkResult(revision="r1", output_tokens_per_second={"1": 20.0, "8": 100.0},
                                   ttft_p95_seconds={"1": 0.05, "8": 0.2})
    for cand in (bench(throughput=95.0), bench(throughput=80.0)):
        assert gate(p, good, serving, cand, recorded).rows == gate(p, good, serving, cand, bench()).rows
    # A first rollout has no throughput to compare with; the candidate's benchmark must still be usable.
    assert gate(p, good, NO_SERVING_MODEL, bench(throughput=1.0)).passed
    assert not gate(p, good, NO_SERVING_MODEL, bench(failed=1)).passed


def test_the_evaluation_part_is_decided_before_the_benchmark() -> None:
    p = balanced(maxTTFTp95Ms=500, minThroughputRatio=0.9, benchmarkConcurrency=8, maxRegression=0.1)
    first = promotion.evaluation_only(p)
    assert not first.gate.objectives() and first.gate.max_regression == 0.1
    v = gate(first, evaluated(0.7, 0.7), evaluated(0.6, 0.6))
    assert v.passed and not any("concurrency" in r.criterion for r in v.rows)
    full = gate(p, evaluated(0.7, 0.7), evaluated(0.6, 0.6), bench(), bench())
    assert full.passed and {"benchmark at concurrency 8", "TTFT p95 at concurrency 8",
                            "output tok/s at concurrency 8"} <= {r.criterion for r in full.rows}
