"""Checks the CRD schema cannot express; each problem is one message naming the field.

The handler adds what needs the API (that the Secrets `referenced_secrets` lists exist and hold their keys).
"""

from __future__ import annotations

from kubetune_jobs.contract import env, suites
from kubetune_jobs.contract.store import StoreConfigError, normalize_endpoint

from .. import urls
from . import api


def problems(spec: api.FineTuneRunSpec) -> list[str]:
    """Semantic problems of a spec that parsed; empty when it is fine."""
    out: list[str] = []
    for i, suite in enumerate(spec.evaluation.suites):
        # The CRD lists the same names; a cluster with an outdated CRD may not.
        name = suite.name
        if name.startswith(suites.BFCL_PREFIX) and name not in suites.KNOWN:
            out.append(f"spec.evaluation.suites[{i}].name: unknown BFCL category {name[len(suites.BFCL_PREFIX):]!r} "
                       f"(known: {', '.join(suites.BFCL_CATEGORIES)})")
        elif name not in suites.KNOWN:
            out.append(f"spec.evaluation.suites[{i}].name: unknown suite {name!r} (known: {', '.join(suites.KNOWN)})")
    names = [s.name for s in spec.evaluation.suites]
    for i, name in enumerate(names):
        if name in names[:i]:
            out.append(f"spec.evaluation.suites[{i}].name: suite {name!r} is listed twice")
    for suite in spec.evaluation.gates.min_accuracy:
        if suite not in names:
            out.append(f"spec.evaluation.gates.minAccuracy.{suite}: not one of spec.evaluation.suites")
    if spec.evaluation.gates.max_false_call_rate is not None and not spec.evaluation.suites:
        out.append("spec.evaluation.gates.maxFalseCallRate: set, but spec.evaluation.suites is empty")
    for i, stage in enumerate(spec.stages):
        d = stage.dataset
        if d.format != "xlam" and d.no_call_source:
            out.append(f"spec.stages[{i}].dataset.noCallSource: only the xlam format mixes in no-call rows")
        if d.format != "xlam" and d.turns_per_row > 1:
            out.append(f"spec.stages[{i}].dataset.turnsPerRow: only the xlam format groups requests under one "
                       "tools block; chat rows keep their own turns")
        if d.format == "xlam" and d.no_call_fraction > 0 and not d.no_call_source:
            out.append(f"spec.stages[{i}].dataset.noCallSource: required when noCallFraction > 0 "
                       "(xlam alone teaches the model to call tools when it should not)")
        t = spec.stage_training(stage)
        if t.backend == "unsloth" and spec.resources.gpus == 0:
            out.append(f"spec.stages[{i}].training.backend: unsloth needs a GPU (spec.resources.gpus is 0)")
        overrides = stage.training.model_dump(exclude_none=True) if stage.training else {}
        if overrides.get("load_in_4bit") and spec.resources.gpus == 0:
            out.append(f"spec.stages[{i}].training.loadIn4bit: 4-bit QLoRA needs a GPU (spec.resources.gpus is 0)")
    t = spec.training
    if t.load_in_4bit and spec.resources.gpus == 0:
        out.append("spec.training.loadIn4bit: 4-bit QLoRA needs a GPU (spec.resources.gpus is 0); set it to false")
    if t.backend == "unsloth" and spec.resources.gpus == 0:
        out.append("spec.training.backend: unsloth needs a GPU (spec.resources.gpus is 0)")
    if spec.storage.credentials_secret is None and spec.storage.endpoint:
        out.append("spec.storage.credentialsSecret: required when spec.storage.endpoint is set")
    if spec.storage.endpoint:
        try:
            normalize_endpoint(spec.storage.endpoint, spec.storage.secure)
        except StoreConfigError as exc:
            out.append(f"spec.storage.endpoint: {exc}")
    if spec.pushgateway:
        out += [f"spec.pushgateway: {p}" for p in urls.problems(spec.pushgateway)]
    return out


def referenced_secrets(spec: api.FineTuneRunSpec) -> list[tuple[str, str, tuple[str, ...]]]:
    """(field path, Secret name, keys it must hold) for every Secret the run's Jobs reference."""
    out = []
    if spec.storage.credentials_secret:
        out.append(("spec.storage.credentialsSecret", spec.storage.credentials_secret, env.STORE_CREDENTIALS))
    if spec.hub_token_secret:
        out.append(("spec.hubTokenSecret", spec.hub_token_secret, (env.HF_TOKEN,)))
    return out
