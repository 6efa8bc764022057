"""After a promotion: what the live probe's last round of the promoted revision says (pure).

The probe (`kubetune-job probe`, `spec.monitoring.probe`) writes its last round to the store as `probe.json`; the
operator reads it like any report, as untrusted bytes. During the watch window (`spec.promotion.watchSeconds`) a
round that breaks the probe's thresholds moves traffic back to the previous revision. A probe.json that cannot be
read as a round of this revision is a failed round: a watch that cannot see says no. No round yet is no verdict.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from kubetune_jobs.contract import records

from . import api, promotion

PROBE = "spec.monitoring.probe"


@dataclass(frozen=True)
class ProbeVerdict:
    """One read of a revision's probe.json: its figures (None when there are none), and why it fails (None: it passes
    or there is nothing to judge yet)."""

    figures: api.ProbeStatus | None
    failure: str | None

    @property
    def seen(self) -> bool:
        return self.figures is not None or self.failure is not None


NOT_YET = ProbeVerdict(None, None)


def read(probe: api.ProbeSpec, revision: str, evidence: promotion.Evidence) -> ProbeVerdict:
    """The verdict on `revision`'s last probe round."""
    if evidence is None:
        return NOT_YET
    if isinstance(evidence, promotion.Unreadable):
        return ProbeVerdict(None, f"its probe.json cannot be read: {evidence.reason}")
    report = records.read(records.ProbeReport, evidence) if isinstance(evidence, bytes | str) else None
    if report is None:
        return ProbeVerdict(None, "its probe.json is not a probe round (invalid JSON, a missing figure, or a share "
                                  "outside [0, 1])")
    if report.revision != revision:
        return ProbeVerdict(None, f"its probe.json is a round of revision {report.revision!r}, not of {revision}")
    when = _time(report.created)
    if when is None:
        return ProbeVerdict(None, f"its probe.json's `created` {report.created[:64]!r} is not an RFC 3339 time")
    h = report.health
    figures = api.ProbeStatus(revision=revision, time=when, rounds=report.rounds, accuracy=h.accuracy,
                              unparseable=h.unparseable, failed=h.failed, call=h.call, no_call=h.no_call)
    why = []
    if h.failed > probe.max_failed_rate:
        why.append(f"{PROBE}.maxFailedRate: {h.failed:.2f} of the requests unanswered > {probe.max_failed_rate}"
                   + (f" ({h.unanswered_because[:200]})" if h.unanswered_because else ""))
    if h.unparseable is not None and h.unparseable > probe.max_unparseable_rate:
        why.append(f"{PROBE}.maxUnparseableRate: {h.unparseable:.2f} of the answers' calls reached the client as text "
                   f"> {probe.max_unparseable_rate}")
    if probe.min_accuracy is not None and h.accuracy < probe.min_accuracy:
        why.append(f"{PROBE}.minAccuracy: accuracy {h.accuracy:.2f} < {probe.min_accuracy}")
    return ProbeVerdict(figures, "; ".join(why) or None)


def _time(text: str) -> str | None:
    """`text` as a UTC RFC 3339 time (what the watch compares with its window), or None when it is not one with a
    time zone."""
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, TypeError):
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
