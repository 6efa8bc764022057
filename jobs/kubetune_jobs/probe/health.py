"""What a client of the endpoint gets, and the health figures of one probe round.

The evaluator reads call markup a server left in a reply's content as calls, so that a served model can be
scored like an in-process one. A client cannot: an application reads `tool_calls`, and a call that comes back
as text (a chat template or tool parser that does not match the model, vllm#22885) is a call it never makes,
with `finish_reason: stop` and every latency figure green. The probe therefore reads replies as a client does:
calls only from `tool_calls`; `<tool_call>` markup left in the content, or a call-shaped JSON object naming an
offered tool under any other markup, counts the answer unparseable.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from ..chat_template import TOOL_CALL_END, TOOL_CALL_START
from ..contract.records import ProbeHealth
from ..evaluate.report import aggregate, score_item
from ..evaluate.suites import Item
from ..evaluate.targets import Prediction, decode_calls

MARKUP = (TOOL_CALL_START, TOOL_CALL_END)
LEFT_IN_CONTENT = "tool-call markup left in the message content: the server's tool parser did not take it"
CALL_AS_TEXT = "a call to an offered tool came back as text in the message content, not as tool_calls"


def as_client_reads(content: str | None, tool_calls: list[Any] | None, latency_s: float | None = None,
                    cut_off: bool = False) -> Prediction:
    """A chat reply as an application receives it (an `EndpointTarget` reader)."""
    calls, errors = decode_calls(tool_calls or [])
    text = content or ""
    if any(mark in text for mark in MARKUP):
        errors.append(LEFT_IN_CONTENT)
    return Prediction(calls=calls, text=text, errors=errors, latency_s=latency_s, cut_off=cut_off)


def line(health: ProbeHealth) -> str:
    """The health line a person reads."""
    def pct(value: float | None) -> str:
        return "–" if value is None else f"{value:.0%}"

    latency = "–" if health.latency_p95_s is None else f"{health.latency_p95_s:.2f}s"
    why = f" ({health.unanswered_because[:200]})" if health.unanswered_because else ""
    return (f"accuracy {pct(health.accuracy)}, unparseable {pct(health.unparseable)}, schema violations "
            f"{pct(health.schema_violation)}, calls {pct(health.call)}, no-calls {pct(health.no_call)}, "
            f"p95 {latency}, unanswered {health.items - health.answered}/{health.items}{why}")


def call_in_text(text: str, offered: set[str]) -> bool:
    """Whether `text` holds a call-shaped JSON object (`name` an offered tool, `arguments`): a call that came back
    as text whatever markup wraps it (a template that teaches other tags than the parser reads)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = decoder.raw_decode(text, start)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and obj.get("name") in offered and "arguments" in obj:
            return True
        start = text.find("{", start + 1)
    return False


def score(items: list[Item], answers: dict[str, Prediction]) -> list[dict[str, Any]]:
    """The evaluator's record of each item (a request without an answer is unscored, so wrong). Unlike BFCL's
    irrelevance rule, a call shown to the user as text where no call was wanted fails the item too."""
    records = []
    for item in items:
        pred = answers.get(item.id)
        if pred is not None and not pred.errors and call_in_text(pred.text, {t["function"]["name"] for t in item.tools}):
            pred = replace(pred, errors=[CALL_AS_TEXT])
        rec = score_item(item, pred)
        if rec.get("unparseable") and rec.get("passed"):
            rec.update(passed=False, reason=pred.errors[0] if pred else LEFT_IN_CONTENT)
        records.append(rec)
    return records


def summarize(records: list[dict[str, Any]]) -> ProbeHealth:
    agg = aggregate(records)
    missed = agg.get("missed_call_rate")
    # A no-call request is answered as wanted only without a call of any kind (a call as text is one too).
    no_calls = [r["passed"] for r in records if r.get("scored") and r.get("expects_call") is False]
    return ProbeHealth(items=agg["items"], answered=agg["scored"], accuracy=float(agg.get("accuracy") or 0.0),
                  failed=1 - agg["scored"] / agg["items"] if agg["items"] else 1.0,
                  unparseable=agg.get("unparseable_rate"), schema_violation=agg.get("schema_violation_rate"),
                  call=None if missed is None else 1 - missed,
                  no_call=sum(no_calls) / len(no_calls) if no_calls else None,
                  latency_p50_s=agg["latency_p50_s"], latency_p95_s=agg["latency_p95_s"],
                  unanswered_because=next((r["reason"] for r in records if not r.get("scored")), None))
