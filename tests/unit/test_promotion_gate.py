"""The promotion gate, pure: every way a report can be wrong means not promoted, with the side, the suite,
the field and the value named; a first rollout is the only verdict that compares nothing; a recorded
evaluation is read as the report it came from.

The gate of the issue that found the gate failing open: minAccuracy seed-tools 0.5, minMargin 0.05,
maxFalseCallRate 0.1, the serving model scoring 0.60.
"""

from __future__ import annotations

import json

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
