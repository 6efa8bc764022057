"""After a promotion (`spec.promotion.watchSeconds`): the previous revision stays up at `keepPrevious` replicas, the
live probe's last round of the promoted revision is read, and a failing round inside the window (or none at all by
its end, or one that cannot be read) moves the stable Service back, rejects the bad revision and says why in status,
history and an Event. After a passing window the previous revision is removed, and a failure then moves nothing."""

from __future__ import annotations

import json
from dataclasses import replace

from test_modelserve_reconcile import at, changed, cond, decide, kinds, ready
from test_modelserve_resources import spec

from kubetune_jobs.contract import records
from kubetune_operator.modelserve import promotion, resources, validation

WATCH_MINUTES = 10


def watched(**probe):
    return spec(promotion={"watchSeconds": WATCH_MINUTES * 60, "keepPrevious": 1},
                monitoring={"probe": {"enabled": True, "intervalSeconds": 60, "minAccuracy": 0.5, **probe}})


def probe_json(revision: str, when: str, accuracy: float = 0.9, unparseable: float = 0.0, failed: float = 0.0) -> bytes:
    """probe.json as `kubetune-job probe` writes it."""
    health = records.ProbeHealth(items=10, answered=round(10 * (1 - failed)), accuracy=accuracy, failed=failed,
                                 unparseable=unparseable, call=1.0 - unparseable, no_call=1.0)
    return json.dumps(records.ProbeReport(created=when.replace("Z", "+00:00"), model="assistant", revision=revision,
                                          rounds=3, health=health).dump()).encode()


def promoted():
    """A model change rolled out under watch: (observation at promotion, decision, old revision, new revision)."""
    s = watched()
    o, old, new = changed(s)
    o = replace(o, now=at(1))
    d = decide(o)
    o = replace(o, status=d.status, deployments={**ready(old), **ready(new)}, now=at(2))
    return o, decide(o), old, new


def stable_revision(d) -> str:
    service = next(m for m in d.apply if m["kind"] == "Service" and m["metadata"]["name"] == "assistant")
    return service["spec"]["selector"][resources.LABEL_REVISION]


def test_a_promotion_under_watch_keeps_the_previous_revision_up_and_probes_the_new_one() -> None:
    o, d, old, new = promoted()
    assert d.status.model.revision == new and stable_revision(d) == new
    w = d.status.watch
    assert (w.revision, w.previous.revision, w.since, w.until) == (new, old, at(2), at(2 + WATCH_MINUTES))
    assert ("apps/v1", "Deployment", f"assistant-{old}") not in d.delete
    kept = next(m for m in d.apply if m["metadata"]["name"] == f"assistant-{old}" and m["kind"] == "Deployment")
    assert kept["spec"]["replicas"] == 1
    probe = next(m for m in d.apply if m["metadata"]["name"] == resources.probe_name("assistant"))
    args = probe["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:1] == ["probe"] and args[args.index("--revision") + 1] == new
    assert args[args.index("--output") + 1].endswith(f"/probe/{new}")
    assert any(e.reason == "Watching" for e in d.events)
    # A passing round inside the window: the watch goes on, the figures reach the status.
    later = replace(o, status=d.status, now=at(5), probes={new: probe_json(new, at(4))})
    d = decide(later)
    assert d.status.watch is not None and d.status.model.revision == new
    assert d.status.probe.accuracy == 0.9 and d.status.probe.revision == new
    assert ("apps/v1", "Deployment", f"assistant-{old}") not in d.delete


def test_a_failing_round_inside_the_window_moves_traffic_back() -> None:
    o, d, old, new = promoted()
    bad = replace(o, status=d.status, now=at(6), probes={new: probe_json(new, at(5), accuracy=0.2, unparseable=0.8)})
    d = decide(bad)
    assert d.status.model.revision == old and stable_revision(d) == old and d.status.watch is None
    assert ("apps/v1", "Deployment", f"assistant-{new}") in d.delete and new in d.status.rejected
    entry = d.status.history[-1]
    assert (entry.decision, entry.reason, entry.revision) == ("RolledBack", "ProbeFailed", new)
    assert "maxUnparseableRate: 0.80" in entry.message and "minAccuracy: accuracy 0.20 < 0.5" in entry.message
    assert cond(d, "Progressing")["reason"] == "ProbeFailed" and cond(d, "Ready")["status"] == "True"
    assert [e.type for e in d.events if e.reason == "ProbeFailed"] == ["Warning"]
    probe = next(m for m in d.apply if m["metadata"]["name"] == resources.probe_name("assistant"))
    args = probe["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--revision") + 1] == old, "the probe follows the revision serving"
    # The rolled-back revision is not tried again until its model changes.
    again = decide(replace(bad, status=d.status, deployments={**ready(old), **ready(new)}, probes={}))
    assert not any(m["metadata"]["name"] == f"assistant-{new}" for m in again.apply)
    assert cond(again, "Progressing")["reason"] == "PromotionRejected"


def test_after_a_passing_window_the_previous_revision_goes_and_a_failure_moves_nothing() -> None:
    o, d, old, new = promoted()
    o = replace(o, status=d.status, now=at(8), probes={new: probe_json(new, at(7))})
    d = decide(o)
    end = decide(replace(o, status=d.status, now=at(2 + WATCH_MINUTES + 1)))
    assert end.status.watch is None and end.status.model.revision == new
    assert ("apps/v1", "Deployment", f"assistant-{old}") in end.delete
    assert any(e.reason == "WatchEnded" for e in end.events)
    late = decide(replace(o, status=end.status, now=at(40), deployments=ready(new),
                          probes={new: probe_json(new, at(39), accuracy=0.0, unparseable=1.0)}))
    assert late.status.model.revision == new and stable_revision(late) == new
    assert [h.decision for h in late.status.history].count("RolledBack") == 0
    assert late.status.probe.unparseable == 1.0  # the alert's business now, not the watch's


def test_a_failing_round_from_inside_the_window_read_after_it_still_rolls_back() -> None:
    o, d, old, new = promoted()
    d = decide(replace(o, status=d.status, now=at(2 + WATCH_MINUTES + 2),
                       probes={new: probe_json(new, at(2 + WATCH_MINUTES - 1), failed=0.9, accuracy=0.0)}))
    assert d.status.model.revision == old and "maxFailedRate: 0.90" in d.status.history[-1].message


def test_a_failing_round_that_ran_after_the_window_ends_the_watch_without_rolling_back() -> None:
    o, d, old, new = promoted()
    d = decide(replace(o, status=d.status, now=at(2 + WATCH_MINUTES + 2),
                       probes={new: probe_json(new, at(2 + WATCH_MINUTES + 1), accuracy=0.0, unparseable=1.0)}))
    assert d.status.model.revision == new and d.status.watch is None
    assert ("apps/v1", "Deployment", f"assistant-{old}") in d.delete


def test_no_round_by_the_end_of_the_window_rolls_back() -> None:
    o, d, old, new = promoted()
    d = decide(replace(o, status=d.status, now=at(2 + WATCH_MINUTES + 1)))
    assert d.status.model.revision == old and d.status.history[-1].reason == "ProbeMissing"
    assert "cannot vouch" in d.status.history[-1].message and "assistant-probe pod's log" in d.status.history[-1].message


def test_a_probe_json_that_cannot_be_read_is_a_failed_round() -> None:
    o, d, old, new = promoted()
    nan = probe_json(new, at(3)).replace(b'"accuracy": 0.9', b'"accuracy": NaN')
    for evidence, why in ((b"\x00garbage", "not a probe round"), (nan, "not a probe round"),
                          (probe_json("r0ther", at(3)), "a round of revision 'r0ther'"),
                          (probe_json(new, "yesterday"), "is not an RFC 3339 time"),
                          (probe_json(new, "2026-12-01T10:03:00"), "is not an RFC 3339 time"),  # no time zone
                          (promotion.Unreadable("reading s3://...: S3Error: AccessDenied"), "AccessDenied")):
        got = decide(replace(o, status=d.status, now=at(4), probes={new: evidence}))
        assert got.status.model.revision == old and why in got.status.history[-1].message, (evidence, got.status.history)


def test_without_a_watch_the_previous_revision_goes_at_once_and_the_probe_deployment_follows_the_spec() -> None:
    s = spec(monitoring={"probe": {"enabled": True}})
    o, old, new = changed(s)
    d = decide(o)
    d = decide(replace(o, status=d.status, deployments={**ready(old), **ready(new)}))
    assert d.status.watch is None and ("apps/v1", "Deployment", f"assistant-{old}") in d.delete
    assert (("Deployment", resources.probe_name("assistant")) in kinds(d.apply))
    off = decide(replace(o, spec=spec(), status=d.status, deployments=ready(new)))
    assert ("apps/v1", "Deployment", resources.probe_name("assistant")) in off.delete


def test_the_watch_needs_the_probe_and_room_for_two_rounds() -> None:
    assert "spec.promotion.watchSeconds: the watch reads the live probe" in " ".join(
        validation.problems(spec(promotion={"watchSeconds": 600})))
    assert "leaves less than two probe rounds" in " ".join(validation.problems(
        spec(promotion={"watchSeconds": 100}, monitoring={"probe": {"enabled": True, "intervalSeconds": 60}})))
    assert "spec.monitoring.probe.suites[0].name" in " ".join(validation.problems(
        spec(monitoring={"probe": {"enabled": True, "suites": [{"name": "chat"}]}})))
    assert validation.problems(watched()) == []
