"""Checks the CRD schema cannot express; each problem is one message naming the field.

The handler adds what needs the API (referenced Secrets exist) via `missing_secrets`.
"""

from __future__ import annotations

from . import api

# BFCL v4 categories kubetune-job evaluate knows (bfcl-<category>); others are rejected up front.
BFCL_CATEGORIES = frozenset({
    "simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple",
    "irrelevance", "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
    "live_irrelevance", "live_relevance",
})
OTHER_SUITES = frozenset({"seed-tools", "heldout", "chat"})


def problems(spec: api.FineTuneRunSpec) -> list[str]:
    """Semantic problems of a spec that parsed; empty when it is fine."""
    out: list[str] = []
    for i, suite in enumerate(spec.evaluation.suites):
        name = suite.name
        if name.startswith("bfcl-") and name[5:] not in BFCL_CATEGORIES:
            out.append(f"spec.evaluation.suites[{i}].name: unknown BFCL category {name[5:]!r} "
                       f"(known: {', '.join(sorted(BFCL_CATEGORIES))})")
        elif not name.startswith("bfcl-") and name not in OTHER_SUITES:
            out.append(f"spec.evaluation.suites[{i}].name: unknown suite {name!r}")
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
    return out


def referenced_secrets(spec: api.FineTuneRunSpec) -> list[tuple[str, str, tuple[str, ...]]]:
    """(field path, Secret name, keys it must hold) for every Secret the run's Jobs reference."""
    out = []
    if spec.storage.credentials_secret:
        out.append(("spec.storage.credentialsSecret", spec.storage.credentials_secret,
                    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")))
    if spec.hub_token_secret:
        out.append(("spec.hubTokenSecret", spec.hub_token_secret, ("HF_TOKEN",)))
    return out
