"""Which model a ModelServe names, and whether it can be served yet. Pure: the handler supplies the
FineTuneRun object (when the model is one's) and the model directory's completeness marker.

A FineTuneRun that has not finished is a wait, not an error; a failed run, a run that does not exist,
a stage it does not have, or a model directory without its marker are `Unavailable`, with a reason and a
message naming the field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from kubetune_jobs.contract.layout import marker_digest

from . import api


@dataclass(frozen=True)
class Target:
    """A servable model."""

    source: str  # finetunerun/<name>[/<stage>] | the s3:// URI | hub:<id>
    uri: str | None = None  # the model directory in the store
    hub: str | None = None  # or a Hub id vLLM downloads
    adapter: str | None = None  # LoRA mode: the adapter directory served on the model above
    digest: str | None = None  # sha256 of the model's (and adapter's) completeness markers
    datasets: tuple[str, ...] = ()  # the run's prepared data (held-out suites of an evaluation)


@dataclass(frozen=True)
class Waiting:
    reason: str
    message: str


@dataclass(frozen=True)
class Unavailable:
    reason: str
    message: str


Resolution = Target | Waiting | Unavailable


@dataclass(frozen=True)
class Location:
    """Where a target's files are, before their markers are read: what the handler must look up."""

    model_uri: str | None
    adapter_uri: str | None


def from_run(spec: api.ModelServeSpec, run: dict[str, Any] | None) -> Resolution | tuple[Target, Location]:
    """A FineTuneRun reference -> a wait, an unavailability, or the target with the URIs whose markers the
    handler must read (`with_markers`)."""
    ref = spec.model.fine_tune_run
    assert ref is not None
    field = "spec.model.fineTuneRun.name"
    if run is None:
        return Unavailable("RunNotFound", f"{field}: FineTuneRun {ref.name!r} not found in this namespace")
    status = run.get("status") or {}
    phase = status.get("phase")
    if phase == "Failed":
        why = next((c.get("message") for c in status.get("conditions") or [] if c.get("type") == "Succeeded"), "")
        return Unavailable("RunFailed", f"{field}: FineTuneRun {ref.name!r} failed" + (f": {why}" if why else ""))
    if phase != "Succeeded":
        where = status.get("currentStep") or phase or "not started"
        return Waiting("WaitingForRun", f"waiting for FineTuneRun {ref.name!r} to succeed (now: {where})")
    artifacts = status.get("artifacts") or {}
    stages = [s.get("name") for s in (run.get("spec") or {}).get("stages") or []]
    stage = ref.stage or (stages[-1] if stages else None)
    if ref.stage and ref.stage not in stages:
        return Unavailable("StageNotFound", f"spec.model.fineTuneRun.stage: FineTuneRun {ref.name!r} has no stage "
                                            f"{ref.stage!r} (stages: {', '.join(map(str, stages))})")
    source = f"finetunerun/{ref.name}" + (f"/{ref.stage}" if ref.stage else "")
    datasets = tuple((artifacts.get("datasets") or {}).values())
    if spec.model.lora.enabled:
        adapter = (artifacts.get("adapters") or {}).get(stage)
        i = stages.index(stage)
        # The adapter was trained on the previous stage's merged model, the first stage's on the base model.
        base = (artifacts.get("models") or {}).get(stages[i - 1]) if i else (run.get("spec") or {}).get("baseModel")
        if not adapter or not base:
            return Unavailable("ModelNotFound", f"{field}: FineTuneRun {ref.name!r} records no adapter for stage "
                                                f"{stage!r}")
        if base.startswith("s3://"):
            return Target(source + "/lora", uri=base, adapter=adapter, datasets=datasets), Location(base, adapter)
        return Target(source + "/lora", hub=base, adapter=adapter, datasets=datasets), Location(None, adapter)
    model = (artifacts.get("models") or {}).get(stage) if ref.stage else artifacts.get("finalModel")
    if not model:
        return Unavailable("ModelNotFound", f"{field}: FineTuneRun {ref.name!r} records no model for stage {stage!r}")
    return Target(source, uri=model, datasets=datasets), Location(model, None)


def resolve(spec: api.ModelServeSpec, run: dict[str, Any] | None = None) -> Resolution | tuple[Target, Location]:
    """The spec's model, before its files are checked."""
    m = spec.model
    if m.fine_tune_run is not None:
        return from_run(spec, run)
    if m.uri is not None:
        return Target(m.uri, uri=m.uri), Location(m.uri, None)
    return Target(f"hub:{m.hub}", hub=m.hub)


def with_markers(target: Target, location: Location, markers: dict[str, bytes | None],
                 unusable: dict[str, str] | None = None) -> Target | Unavailable:
    """The target with its content digest, or Unavailable when a directory has no completeness marker, or
    one that cannot be used (`unusable`: directory -> why, such as a marker over its size cap)."""
    field = "spec.model.uri" if target.source == location.model_uri else "spec.model.fineTuneRun"
    found = []
    for uri in (location.model_uri, location.adapter_uri):
        if uri is None:
            continue
        if uri in (unusable or {}):
            return Unavailable("ModelUnusable", f"{field}: {uri} cannot be served: {(unusable or {})[uri]}")
        marker = markers.get(uri)
        if marker is None:
            return Unavailable("ModelNotFound", f"{field}: {uri} is not a complete model directory "
                                                "(no _COMPLETE marker)")
        found.append(marker)
    return Target(**{**asdict(target), "digest": marker_digest(*found) if found else None})


def revision(spec: api.ModelServeSpec, target: Target, served_name: str, vllm_image: str) -> str:
    """The id of what serves: the model's content and how vLLM runs it. Replicas, resources and the
    autoscaler are not part of it (they change the running revision in place)."""
    identity = {"model": [target.uri, target.hub, target.adapter, target.digest], "served": served_name,
                "vllm": spec.vllm.model_dump(mode="json", exclude={"image"}), "image": vllm_image,
                "gpus": spec.resources.gpus, "lora": spec.model.lora.model_dump(mode="json", exclude={"max_loras"})}
    if spec.adapters:  # LoRA on for the runtime adapters; which ones is not the revision's (they change in place)
        identity["runtime_adapters"] = spec.model.lora.max_loras
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
