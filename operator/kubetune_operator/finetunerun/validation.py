"""Checks the CRD schema cannot express; each problem is one message naming the field.

The handler adds what needs the API (that the Secrets `referenced_secrets` lists exist and hold their keys).
"""

from __future__ import annotations

import re

from kubetune_jobs.contract import env, suites
from kubetune_jobs.contract.launch import BatchPlanError, accumulation
from kubetune_jobs.contract.store import StoreConfigError, normalize_endpoint

from .. import urls
from ..apitypes import S3_URI, SYNTAX, shown
from . import api
from .plan import train_launch


def _training_problems(where: str, t: api.TrainingSpec, set_here: dict, spec: api.FineTuneRunSpec) -> list[str]:
    """The distribution settings of one stage's training that cannot work; `set_here` holds the fields this
    level sets itself (a stage names only what it overrides, so a problem is reported once, where it is)."""
    out = []
    world = train_launch(spec.resources).world_size
    if t.global_batch_size is not None and {"global_batch_size", "batch_size"} & set_here.keys():
        try:
            accumulation(t.global_batch_size, t.batch_size, world, what="globalBatchSize")
        except BatchPlanError as exc:
            field = "globalBatchSize" if "global_batch_size" in set_here else "batchSize"
            out.append(f"{where}.{field}: {exc} (world size = spec.resources.gpus x spec.resources.nodes)")
    if t.distribution == "fsdp" and ({"distribution", "load_in_4bit"} & set_here.keys()):
        if t.load_in_4bit:
            out.append(f"{where}.distribution: fsdp cannot shard 4-bit (QLoRA) base weights here; set loadIn4bit "
                       "false or use ddp")
        if t.backend == "unsloth":
            out.append(f"{where}.backend: unsloth does not support fsdp; use auto or trl (TRL + PEFT), or ddp")
    return out


def _s3_problems(field: str, value: str | None) -> list[str]:
    """A source that says s3:// must name a bucket the store can have (`s3://`, `s3:///x` do not)."""
    if value is None or not value.lower().startswith("s3:") or re.fullmatch(S3_URI, value):
        return []
    return [f"{field}: {shown(value)} is not {SYNTAX[S3_URI]}"]


def _merge_problems(spec: api.FineTuneRunSpec) -> list[str]:
    """A stage that publishes its adapter only (merge false) must be one nothing loads the merged model of:
    the last stage, and not evaluated (evaluation loads the merged model)."""
    out: list[str] = []
    last = len(spec.stages) - 1
    for i, stage in enumerate(spec.stages):
        if spec.stage_training(stage).merge:
            continue
        overridden = stage.training is not None and stage.training.merge is not None
        where = f"spec.stages[{i}].training.merge" if overridden else "spec.training.merge"
        if i < last:
            out.append(f"{where}: false, but stage {spec.stages[i + 1].name!r} trains from stage {stage.name!r}'s "
                       "merged model; only the last stage may publish its adapter alone")
        elif spec.evaluation.suites:  # the last stage is always evaluated when there are suites
            out.append(f"{where}: false, but stage {stage.name!r} is evaluated, which loads its merged model; "
                       "set spec.evaluation.suites to [] to publish the adapter alone")
    return list(dict.fromkeys(out))


def problems(spec: api.FineTuneRunSpec) -> list[str]:
    """Semantic problems of a spec that parsed; empty when it is fine."""
    out: list[str] = _s3_problems("spec.baseModel", spec.base_model)
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
        out += _s3_problems(f"spec.stages[{i}].dataset.source", d.source)
        out += _s3_problems(f"spec.stages[{i}].dataset.noCallSource", d.no_call_source)
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
        out += _training_problems(f"spec.stages[{i}].training", t, overrides, spec)
        if overrides.get("load_in_4bit") and spec.resources.gpus == 0:
            out.append(f"spec.stages[{i}].training.loadIn4bit: 4-bit QLoRA needs a GPU (spec.resources.gpus is 0)")
    out += _merge_problems(spec)
    t = spec.training
    out += _training_problems("spec.training", t, t.model_dump(), spec)
    if spec.resources.nodes > 1 and spec.resources.gpus == 0:
        out.append(f"spec.resources.nodes: {spec.resources.nodes} nodes need GPUs (spec.resources.gpus is 0); "
                   "CPU training runs on one node")
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
