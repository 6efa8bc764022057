"""Our reading of raw model text against vLLM's own hermes parser (run in vLLM's venv).

`reference` runs `hermes_reference.py` there; `mismatches` says where our `parse_tool_calls` and the
evaluator's `from_text` differ from what a client of vLLM receives for one text; `compare_report`
does that for every generation recorded in a report.json (`items[].raw`) and also checks what the
report recorded for it.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from kubetune_jobs.chat_template import TOOL_CALL_START, parse_tool_calls
from kubetune_jobs.evaluate.targets import Prediction, from_message, from_text
from kubetune_jobs.serving.vllm_server import server_env, vllm_python

SCRIPT = Path(__file__).with_name("hermes_reference.py")


def reference(texts: list[str], tokenizer_dir: str | Path, timeout: float = 600) -> list[dict[str, Any]]:
    """vLLM's hermes results for `texts`, in order (see hermes_reference.py for their shape)."""
    python = vllm_python()
    with tempfile.TemporaryDirectory(prefix="hermes-ref-") as tmp:
        src, dest = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        # -P: the script's own folder must not shadow vLLM's modules on sys.path.
        proc = subprocess.run([str(python), "-P", str(SCRIPT), str(tokenizer_dir), str(src), str(dest)],
                              env=server_env(python=python), capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"hermes_reference.py failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                               f"{proc.stderr[-3000:]}")
        results = json.loads(dest.read_text(encoding="utf-8"))
    assert len(results) == len(texts)
    return results


def _canon(calls: list[dict[str, Any]]) -> list[tuple[str, str]]:
    # JSON text, so NaN compares equal to NaN and key order inside arguments does not matter.
    return [(c["name"], json.dumps(c["arguments"], sort_keys=True, ensure_ascii=False)) for c in calls]


def _decoded(wire: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": c["name"], "arguments": json.loads(c["arguments"])} for c in wire]


def served_prediction(ref: dict[str, Any]) -> Prediction:
    """The evaluator's prediction from vLLM's reply, as `EndpointTarget` builds it."""
    served = ref["served"]
    wire = [{"type": "function", "function": c} for c in served["tool_calls"] or []]
    return from_message(served["content"], wire)


def mismatches(text: str, ref: dict[str, Any]) -> list[str]:
    """Where our reading of `text` differs from vLLM's (`ref`); empty when they agree."""
    out = []
    ours = parse_tool_calls(text)
    served, extract = ref["served"], ref["extract"]
    theirs = _decoded(served["tool_calls"] or [])
    if _canon(_decoded(extract["calls"])) != _canon(theirs):
        out.append(f"vLLM's serving layer changed the parser's calls: {extract} -> {served}")
    if _canon(ours.calls) != _canon(theirs):
        out.append(f"calls: ours {ours.calls!r}, hermes {theirs!r}")
    if bool(ours.calls) != extract["tools_called"]:
        out.append(f"tools_called: ours {bool(ours.calls)}, hermes {extract['tools_called']}")
    if ours.content != (served["content"] or ""):
        out.append(f"content: ours {ours.content!r}, hermes {served['content']!r}")
    markup_failed = TOOL_CALL_START in text and not extract["tools_called"]
    if bool(ours.errors) != markup_failed:
        out.append(f"errors: ours {ours.errors!r}, but hermes {'failed' if markup_failed else 'did not fail'}")
    a, b = from_text(text), served_prediction(ref)
    if (_canon(a.calls), a.text, bool(a.errors)) != (_canon(b.calls), b.text, bool(b.errors)):
        out.append(f"evaluator: from raw text {(a.calls, a.text, a.errors)!r}, "
                   f"from vLLM's reply {(b.calls, b.text, b.errors)!r}")
    return out


def compare_texts(texts: dict[str, str], tokenizer_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Assert agreement for every `{label: text}`; returns vLLM's results by label."""
    labels = list(texts)
    refs = dict(zip(labels, reference([texts[k] for k in labels], tokenizer_dir), strict=True))
    failures = {k: m for k, ref in refs.items() if (m := mismatches(texts[k], ref))}
    assert not failures, f"{len(failures)} of {len(labels)} disagree with vLLM's hermes parser:\n" + "\n".join(
        f"  {k} ({texts[k]!r}): " + "; ".join(m) for k, m in failures.items())
    return refs


def _shown(name: str) -> str:
    # Reports record BFCL's own (dotted) names; models are shown and emit them with `_`.
    return name.replace(".", "_")


def compare_report(report: dict[str, Any], tokenizer_dir: str | Path) -> int:
    """Every item of a report.json that records its raw generation: our reading of it agrees with
    vLLM's hermes parser, and the recorded outcome (unparseable, called, calls, text) is the one
    vLLM's reply would have given. Returns how many items were compared."""
    items = [it for it in report["items"] if it.get("raw") is not None]
    refs = reference([it["raw"] for it in items], tokenizer_dir)
    failures = {}
    for rec, ref in zip(items, refs, strict=True):
        problems = mismatches(rec["raw"], ref)
        pred = served_prediction(ref)
        unparseable = bool(pred.errors)
        if rec.get("unparseable") != unparseable:
            problems.append(f"recorded unparseable={rec.get('unparseable')}, vLLM's reply gives {unparseable}")
        calls = [] if unparseable else pred.calls
        if rec.get("called") != bool(calls):
            problems.append(f"recorded called={rec.get('called')}, vLLM's reply gives {bool(calls)}")
        recorded = [{"name": _shown(c["name"]), "arguments": c["arguments"]} for c in rec.get("calls", [])]
        if _canon(recorded) != _canon([{"name": _shown(c["name"]), "arguments": c["arguments"]} for c in calls]):
            problems.append(f"recorded calls {rec.get('calls')!r}, vLLM's reply gives {calls!r}")
        if rec.get("text", "") != pred.text[:500]:
            problems.append(f"recorded text {rec.get('text')!r}, vLLM's reply gives {pred.text[:500]!r}")
        if problems:
            failures[rec["id"]] = problems
    assert not failures, f"{len(failures)} of {len(items)} generations disagree with vLLM's hermes parser:\n" + \
        "\n".join(f"  {k}: " + "; ".join(m) for k, m in failures.items())
    return len(items)
