"""Checks of a ModelServe spec that its schema cannot express; each problem is one message naming the field.
`kubetune validate`, `kubetune serve` and the operator all call `problems`."""

from __future__ import annotations

from kubetune_jobs.contract import env, suites
from kubetune_jobs.contract.store import StoreConfigError, normalize_endpoint

from . import api, vllm


def problems(spec: api.ModelServeSpec) -> list[str]:
    out = vllm.problems(spec)
    names = [s.name for s in spec.promotion.suites]
    for i, name in enumerate(names):
        if name not in suites.KNOWN:
            out.append(f"spec.promotion.suites[{i}].name: unknown suite {name!r} (known: {', '.join(suites.KNOWN)})")
        elif name == suites.CHAT:
            out.append(f"spec.promotion.suites[{i}].name: the chat suite over an endpoint needs a judge model; "
                       "gate on tool-calling suites")
        elif name in suites.NEEDS_DATA and spec.model.fine_tune_run is None:
            out.append(f"spec.promotion.suites[{i}].name: {name} reads a FineTuneRun's held-out data; "
                       "spec.model names no FineTuneRun")
        if name in names[:i]:
            out.append(f"spec.promotion.suites[{i}].name: suite {name!r} is listed twice")
    for suite in spec.promotion.gate.min_accuracy:
        if suite not in names:
            out.append(f"spec.promotion.gate.minAccuracy.{suite}: not one of spec.promotion.suites")
    out += _objectives(spec)
    out += _probe(spec)
    out += _adapters(spec)
    a = spec.autoscaling
    if a.enabled and a.min_replicas > a.max_replicas:
        out.append("spec.autoscaling.minReplicas: must not exceed spec.autoscaling.maxReplicas")
    if spec.storage.endpoint:
        if spec.storage.credentials_secret is None:
            out.append("spec.storage.credentialsSecret: required when spec.storage.endpoint is set")
        try:
            normalize_endpoint(spec.storage.endpoint, spec.storage.secure)
        except StoreConfigError as exc:
            out.append(f"spec.storage.endpoint: {exc}")
    return out


def _objectives(spec: api.ModelServeSpec) -> list[str]:
    """The serving objectives read the candidate's benchmark at a level the benchmark runs."""
    g = spec.promotion.gate
    if not g.objectives():
        return []
    named = "maxTTFTp95Ms" if g.max_ttft_p95_ms is not None else "minThroughputRatio"
    if not spec.benchmark.enabled:
        return [f"spec.promotion.gate.{named}: reads the candidate's benchmark; spec.benchmark.enabled is false"]
    if g.benchmark_concurrency is None:
        return [f"spec.promotion.gate.benchmarkConcurrency: required with {named} (one of spec.benchmark.concurrency: "
                f"{', '.join(map(str, spec.benchmark.concurrency))})"]
    if g.benchmark_concurrency not in spec.benchmark.concurrency:
        return [f"spec.promotion.gate.benchmarkConcurrency: {g.benchmark_concurrency} is not one of "
                f"spec.benchmark.concurrency ({', '.join(map(str, spec.benchmark.concurrency))})"]
    return []


def _adapters(spec: api.ModelServeSpec) -> list[str]:
    if not spec.adapters:
        return []
    out = []
    if spec.promotion.enabled:
        # Fail closed: an adapter must not go live ungated where the serve asks for a gate.
        out.append("spec.adapters: adapters are not gated one by one yet, and spec.promotion.enabled asks for a "
                   "gate; serve them from a ModelServe without spec.promotion")
    served = spec.served_model_name
    for i, a in enumerate(spec.adapters):
        if served is not None and a.name == served:
            out.append(f"spec.adapters[{i}].name: {a.name!r} is the base model's name (spec.servedModelName)")
    return out


def referenced_secrets(spec: api.ModelServeSpec) -> list[tuple[str, str, tuple[str, ...]]]:
    """(field path, Secret name, keys it must hold) for every Secret the serving pods reference."""
    out = []
    if spec.api_key_secret:
        out.append(("spec.apiKeySecret", spec.api_key_secret.name, (spec.api_key_secret.key,)))
    if spec.storage.credentials_secret:
        out.append(("spec.storage.credentialsSecret", spec.storage.credentials_secret, env.STORE_CREDENTIALS))
    if spec.hub_token_secret:
        out.append(("spec.hubTokenSecret", spec.hub_token_secret, (env.HF_TOKEN,)))
    return out


def _probe(spec: api.ModelServeSpec) -> list[str]:
    probe, out = spec.monitoring.probe, []
    names = [s.name for s in probe.suites]
    for i, name in enumerate(names):
        if name not in suites.KNOWN:
            out.append(f"spec.monitoring.probe.suites[{i}].name: unknown suite {name!r}")
        elif name in (suites.HELDOUT, suites.CHAT):
            out.append(f"spec.monitoring.probe.suites[{i}].name: the probe sends tool-calling requests; {name} is not "
                       "probed (give your own set in spec.monitoring.probe.data)")
    if probe.enabled and not names and not probe.data:
        out.append("spec.monitoring.probe.suites: empty and no spec.monitoring.probe.data: the probe has nothing to send")
    if spec.promotion.watch_seconds and not probe.enabled:
        out.append("spec.promotion.watchSeconds: the watch reads the live probe; set spec.monitoring.probe.enabled")
    if spec.promotion.watch_seconds and probe.interval_seconds * 2 > spec.promotion.watch_seconds:
        out.append(f"spec.promotion.watchSeconds: {spec.promotion.watch_seconds} s leaves less than two probe rounds "
                   f"(spec.monitoring.probe.intervalSeconds {probe.interval_seconds})")
    return out
