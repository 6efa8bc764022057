"""spec.adapters: which adapter each entry names, the set every replica loads, and what the replicas say they
serve. Pure: the handler supplies the FineTuneRuns, the adapters' completeness markers and the replicas'
reports (`records.ReplicaAdapters`, written by each replica's adapter agent).

An adapter joins the set once its files are complete and it was trained on the model this serve serves; each
Ready replica of the serving revision then loads it on its own (the agent), and it is Ready when every one of
them answers for it with the same content. A failure on one replica is that adapter's alone: its state says
which replica and why, and the agent retries it every pass.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from kubetune_jobs.contract.layout import marker_digest
from kubetune_jobs.contract.records import FAILED, LOADED, AdapterSet, ReplicaAdapters, Wanted

from . import api
from .source import Target, Unavailable, Waiting


@dataclass(frozen=True)
class Located:
    """An adapter whose directory is known; `digest` once its marker is read."""

    name: str
    source: str
    uri: str
    digest: str | None = None


Resolution = Located | Waiting | Unavailable


def locate(spec: api.ModelServeSpec, index: int, run: dict[str, Any] | None, base: Target) -> Resolution:
    """spec.adapters[index] -> its directory, a wait for its run, or why it cannot be served (its field named).
    A run's adapter must have been trained on the model this serve serves: another base is refused here, not
    left to vLLM (which loads any adapter whose shapes fit, trained on whatever)."""
    a = spec.adapters[index]
    field = f"spec.adapters[{index}]"
    if a.uri is not None:
        return Located(a.name, a.uri, a.uri)
    ref = a.fine_tune_run
    assert ref is not None
    if run is None:
        return Unavailable("RunNotFound", f"{field}.fineTuneRun.name: FineTuneRun {ref.name!r} not found in this "
                                          "namespace")
    status = run.get("status") or {}
    if status.get("phase") == "Failed":
        return Unavailable("RunFailed", f"{field}.fineTuneRun.name: FineTuneRun {ref.name!r} failed")
    if status.get("phase") != "Succeeded":
        return Waiting("WaitingForRun", f"{field}: waiting for FineTuneRun {ref.name!r} to succeed")
    stages = [s.get("name") for s in (run.get("spec") or {}).get("stages") or []]
    stage = ref.stage or (stages[-1] if stages else None)
    if stage not in stages:
        return Unavailable("StageNotFound", f"{field}.fineTuneRun.stage: FineTuneRun {ref.name!r} has no stage "
                                            f"{stage!r}")
    artifacts = status.get("artifacts") or {}
    uri = (artifacts.get("adapters") or {}).get(stage)
    if not isinstance(uri, str) or not uri:
        return Unavailable("AdapterNotFound", f"{field}: FineTuneRun {ref.name!r} records no adapter for stage "
                                              f"{stage!r}")
    i = stages.index(stage)
    # A stage trains on the previous stage's merged model; the first on the run's base model.
    trained_on = (artifacts.get("models") or {}).get(stages[i - 1]) if i else (run.get("spec") or {}).get("baseModel")
    serves = base.uri or base.hub
    if trained_on != serves:
        return Unavailable("BaseMismatch", f"{field}: FineTuneRun {ref.name!r} stage {stage!r} trained on "
                                           f"{trained_on}, and this serve serves {serves}")
    return Located(a.name, _run_source(a), uri)


def with_marker(found: Located, marker: bytes | None, unusable: str | None = None) -> Located | Unavailable:
    if unusable:
        return Unavailable("AdapterUnusable", f"adapter {found.name!r}: {found.uri} cannot be served: {unusable}")
    if marker is None:
        return Unavailable("AdapterNotFound", f"adapter {found.name!r}: {found.uri} is not a complete adapter "
                                              "directory (no _COMPLETE marker)")
    return replace(found, digest=marker_digest(marker))


def adapter_set(spec: api.ModelServeSpec, served_name: str, resolutions: list[Resolution],
                previous: list[api.AdapterStatus]) -> AdapterSet:
    """The set every replica converges to: the adapters whose files are known complete. One that waits (its
    run re-running, the store unreachable) keeps what it had: a wait never unloads an adapter."""
    before = {s.name: s for s in previous}
    wanted = []
    for a, r in zip(spec.adapters, resolutions, strict=True):
        if isinstance(r, Located) and r.digest is not None:
            wanted.append(Wanted(name=r.name, uri=r.uri, digest=r.digest))
        elif isinstance(r, Waiting) and (old := before.get(a.name)) is not None and old.uri and old.digest:
            wanted.append(Wanted(name=a.name, uri=old.uri, digest=old.digest))
    return AdapterSet(base=served_name, max_rank=spec.model.lora.max_rank, adapters=wanted)


def statuses(spec: api.ModelServeSpec, resolutions: list[Resolution], reports: dict[str, ReplicaAdapters | None],
             previous: list[api.AdapterStatus]) -> list[api.AdapterStatus]:
    """Each adapter's state from the Ready replicas' reports (`reports`: pod -> its last report, None where it
    has written none). An adapter is Ready when every Ready replica serves its current content. One that waits
    keeps the directory and digest it had (the set keeps serving them, `adapter_set`)."""
    before = {s.name: s for s in previous}
    out = []
    for a, r in zip(spec.adapters, resolutions, strict=True):
        if isinstance(r, Unavailable):
            out.append(api.AdapterStatus(name=a.name, source=a.uri or _run_source(a), state="Failed",
                                         message=r.message))
            continue
        if isinstance(r, Waiting):
            old = before.get(a.name)
            kept = {"uri": old.uri, "digest": old.digest, "replicas": old.replicas} if old and old.uri and old.digest \
                else {}
            out.append(api.AdapterStatus(name=a.name, source=a.uri or _run_source(a), state="Waiting",
                                         message=r.message, **kept))
            continue
        serving, failures, pending = [], [], []
        for pod, report in sorted(reports.items()):
            entry = next((e for e in report.adapters if e.name == a.name and e.digest == r.digest), None) \
                if report is not None else None
            if entry is not None and entry.state == LOADED:
                serving.append(pod)
            elif entry is not None and entry.state == FAILED:
                failures.append(f"{pod}: {entry.reason or 'no reason given'}")
            else:
                pending.append(pod)
        if failures:
            state, message = "Failed", f"not served by {len(failures)} of {len(reports)} Ready replicas (retried): " \
                + "; ".join(failures)
        elif reports and not pending:
            state, message = "Ready", None
        else:
            state = "Loading"
            message = (f"served by {len(serving)} of {len(reports)} Ready replicas" if reports
                       else "no Ready replica of the serving revision yet")
        out.append(api.AdapterStatus(name=a.name, source=r.source, uri=r.uri, digest=r.digest, state=state,
                                     message=message[:2048] if message else None, replicas=serving[:100]))
    return out


def _run_source(a: api.AdapterSpec) -> str:
    ref = a.fine_tune_run
    assert ref is not None
    return f"finetunerun/{ref.name}" + (f"/{ref.stage}" if ref.stage else "")


def ready(states: list[api.AdapterStatus]) -> str | None:
    return f"{sum(s.state == 'Ready' for s in states)}/{len(states)}" if states else None
