"""The FineTuneRun API (`kubetune.io/v1alpha1`): typed pydantic models, the single source of its CRD schema.

`scripts/gen_crds.py` turns these models into the CRD YAML (see `crd.py`); `kubetune run` and the operator
parse manifests with the same models, so a field documented here means the same thing everywhere. The
LoRA and training objects (and each stage's overrides) are built from the hyperparameters declared in
`kubetune_jobs.contract.hyperparams`; the data-preparation and evaluation defaults are the jobs' own
(`kubetune_jobs.contract.options`): one definition, the reference run's values.

Parsing a manifest file into the typed model::

    run = load_manifest("manifests/examples/qwen2.5-3b-function-calling.yaml")   # -> FineTuneRun
    run.spec.stages[0].dataset.format                                         # "ultrachat"
    spec = FineTuneRunSpec.model_validate(obj["spec"])   # from a dict (camelCase keys), defaults filled

A bad manifest raises `SpecError` whose message names the field (`spec.stages[1].dataset.format: ...`).

Restart semantics (documented, enforced by CEL in the CRD): once created, every field that shapes the
artifacts (baseModel, storage, stages, lora, training, evaluation, hubTokenSecret) is immutable; to train
with other settings create a new FineTuneRun. Scheduling fields (resources, images, pushgateway,
cleanupPolicy) may change and apply to Jobs created afterwards.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from kubetune_jobs.contract import hyperparams, suites
from kubetune_jobs.contract.options import FORMATS, EvaluateOptions, PrepareOptions, defaults

from ..apitypes import (
    API_VERSION,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    GROUP,
    IMAGE,
    QUANTITY,
    VERSION,
    Condition,
    Labels,
    ObjectMeta,
    ResourceKind,
    SpecError,
    StorageSpec,
    Toleration,
    described,
)
from ..apitypes import Model as _Model

# The shared API names, reachable from the kind's module as well (`api.SpecError`, `api.GROUP`).
__all__ = ["API_VERSION", "GROUP", "VERSION", "SpecError", "StorageSpec", "Toleration", "Condition"]

KIND = "FineTuneRun"
PLURAL = "finetuneruns"
SINGULAR = "finetunerun"
SHORT_NAMES = ["ftr"]
REFERENCE_SUITES = list(suites.REFERENCE)
SUITE_PATTERN = r"^(bfcl-[a-z_]+|seed-tools|heldout|chat)$"
# One definition of the defaults: the jobs' options (the reference run).
PREPARE = defaults(PrepareOptions)
EVALUATE = defaults(EvaluateOptions)
_f = described


# ---------------------------------------------------------------- spec

class DatasetSpec(_Model):
    """The source dataset of one stage and how `kubetune-job prepare` converts it."""

    source: str = _f(..., "Hub dataset id, s3:// URI, or path inside the job image.", min_length=1, max_length=512)
    format: Literal[FORMATS] = _f(  # type: ignore[valid-type]
        ..., "Source format: `ultrachat` (chat conversations) or `xlam` (function-calling rows converted to "
        "Qwen `<tool_call>` form).")
    split: str | None = _f(None, "Split of a Hub dataset (default: train_sft for ultrachat, train for xlam).",
                           max_length=64)
    max_samples: int | None = _f(None, "Keep at most this many converted rows.", ge=1, le=10_000_000)
    no_call_source: str | None = _f(None, "Chat dataset (ultrachat format) whose rows are paired with unrelated "
                                    "tools as no-call examples (xlam format only).", max_length=512)
    no_call_split: str | None = _f(None, "Split of a Hub no-call source (default: train_sft).", max_length=64)
    no_call_fraction: float = _f(PREPARE["no_call_fraction"], "Share of the stage's rows that are no-call examples (xlam only).",
                                 ge=0.0, le=0.9)
    turns_per_row: int = _f(PREPARE["turns_per_row"], "Requests per training row sharing one tools block (xlam only): up to this many "
                               "call and no-call turns in one conversation, so the tools' schemas are paid once "
                               "per row. 1 keeps one request per row.", ge=1, le=16)
    system_prompt: str | None = _f(None, "System prompt added to every conversation.", max_length=4096)
    eval_fraction: float = _f(PREPARE["eval_fraction"], "Share of rows held out in eval.jsonl.", gt=0.0, lt=0.5)


def declared_model(declaration: type[hyperparams.Declaration], name: str) -> type[_Model]:
    """A FineTuneRun object made of declared hyperparameters (`kubetune_jobs.contract.hyperparams`): each
    field keeps its type, default, bounds and help; its name is the declared `cr` name where the FineTuneRun's
    differs from the flag's, and tuples are lists (JSON has no tuples)."""
    fields: dict[str, Any] = {}
    for flag_name, info, where in declaration.declared():
        typ, default = info.annotation, info.get_default(call_default_factory=True)
        if typing.get_origin(typ) is tuple:
            typ, default = list[typing.get_args(typ)[0]], list(default)  # type: ignore[misc]
        typ = Annotated[typ, *info.metadata] if info.metadata else typ
        fields[where.cr or flag_name] = (typ, Field(default, description=info.description, alias=where.alias))
    model = create_model(name, __base__=_Model, **fields)
    model.__doc__ = declaration.__doc__
    return model


LoraSpec = declared_model(hyperparams.LoraParameters, "LoraSpec")
TrainingSpec = declared_model(hyperparams.TrainingParameters, "TrainingSpec")


def declared_values(obj: _Model, declaration: type[hyperparams.Declaration]) -> dict[str, Any]:
    """A LoraSpec's or TrainingSpec's values by their declared (flag) names: the train job's options."""
    out = {}
    for flag_name, _, where in declaration.declared():
        value = getattr(obj, where.cr or flag_name)
        out[flag_name] = tuple(value) if isinstance(value, list) else value
    return out


def overrides_model(training: type[_Model]) -> type[_Model]:
    """Every field of `training` (TrainingSpec), optional and unset by default: a stage overrides only what it
    names."""
    fields: dict[str, Any] = {}
    for name, info in training.model_fields.items():
        description = f"Overrides spec.training.{info.alias} for this stage. {info.description}"
        # The bounds (info.metadata) stay on the non-null type, so an override obeys the same limits.
        typ = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
        fields[name] = (typ | None, Field(None, description=description, alias=info.alias))
    model = create_model("TrainingOverrides", __base__=_Model, **fields)
    model.__doc__ = "Per-stage training overrides; unset fields inherit spec.training."
    return model


TrainingOverrides = overrides_model(TrainingSpec)


class StageSpec(_Model):
    """One SFT stage: prepare its dataset, train on it from the previous stage's merged model, export."""

    name: str = _f(..., "Stage name, unique in the run; names Jobs and artifact folders.", min_length=1,
                   max_length=20, pattern=DNS_LABEL)
    dataset: DatasetSpec = _f(..., "The stage's dataset.")
    training: TrainingOverrides | None = _f(None, "Per-stage overrides of spec.training.")  # type: ignore[valid-type]


class SuiteSpec(_Model):
    """An evaluation suite and how much of it to run."""

    name: str = _f(..., "bfcl-<category>, seed-tools, heldout or chat.", max_length=64, pattern=SUITE_PATTERN,
                   json_schema_extra={"enum": list(suites.KNOWN)})
    limit: int | None = _f(None, "First N items of the suite (all when unset).", ge=1)


class GatesSpec(_Model):
    """Thresholds the final model must meet for the run to succeed."""

    min_accuracy: dict[Annotated[str, Field(max_length=64)], Annotated[float, Field(ge=0.0, le=1.0)]] = _f(
        {}, "Minimum accuracy per suite name, e.g. {bfcl-simple_python: 0.8}.", max_length=64)
    max_false_call_rate: float | None = _f(None, "Highest tolerated false-call rate on the final model.",
                                           ge=0.0, le=1.0)


class EvaluationSpec(_Model):
    """Which suites measure the models (base and after each stage)."""

    suites: list[SuiteSpec] = _f([SuiteSpec(name=s) for s in REFERENCE_SUITES],
                                 "Suites evaluated on every evaluated model.", max_length=32)
    evaluate_base: bool = _f(True, "Evaluate the base model first (the 'before' of the comparison).")
    evaluate_every_stage: bool = _f(True, "Evaluate after every stage; false: after the last stage only.")
    max_new_tokens: int = _f(EVALUATE["max_new_tokens"], "Longest answer generated per item (tool calls are short; chat answers longer).",
                             ge=16, le=8192)
    gates: GatesSpec = _f(GatesSpec(), "Thresholds on the final model; failing one fails the run.")


class ResourcesSpec(_Model):
    """Compute, placement and retry policy of the run's Jobs."""

    gpus: int = _f(1, "nvidia.com/gpu per training and evaluation Job (0: CPU only). A training step with more "
                   "than one runs one rank per GPU under torchrun.", ge=0, le=16)
    nodes: int = _f(1, "Nodes (pods) each training step spans, each with `gpus` GPUs. More than 1: an Indexed "
                    "Job with a headless Service for the rendezvous (or a JobSet, an operator setting), admitted "
                    "by Kueue as one workload; a failed pod restarts the whole group from its newest checkpoint, "
                    "at most backoffLimit times.", ge=1, le=64)
    memory: str = _f("48Gi", "Memory limit of GPU Jobs.", pattern=QUANTITY, max_length=32)
    cpu: str = _f("8", "CPU request of GPU Jobs.", pattern=QUANTITY, max_length=32)
    node_selector: Labels = _f({}, "Node labels GPU Jobs require.", max_length=32)
    tolerations: list[Toleration] = _f([], "Tolerations of GPU Jobs.", max_length=32)
    priority_class_name: str | None = _f(None, "PriorityClass of all Jobs.", max_length=253, pattern=DNS_SUBDOMAIN)
    # A LocalQueue's name is a subdomain; it is also the value of Kueue's queue-name label: at most 63.
    kueue_queue: str | None = _f(None, "Kueue LocalQueue: Jobs are created suspended and admitted by Kueue.",
                                 max_length=63, pattern=DNS_SUBDOMAIN)
    backoff_limit: int = _f(3, "Pod failures tolerated per Job (evictions and preemptions do not count); for a "
                            "training step on several nodes, restarts of the whole group.",
                            ge=0, le=100)
    active_deadline_seconds: int = _f(172800, "Wall-clock limit of one Job.", ge=60)
    ttl_seconds_after_finished: int = _f(604800, "Finished Jobs are removed after this long.", ge=0)
    scratch_storage: str = _f("100Gi", "Ephemeral storage each Job requests for its scratch volume (downloaded "
                              "models and data, caches); the container's root filesystem is read-only.",
                              pattern=QUANTITY, max_length=32)
    termination_grace_seconds: int = _f(600, "How long a stopped pod may take to finish its training step and "
                                        "publish a checkpoint before it is killed.", ge=30, le=86400)


class ImagesSpec(_Model):
    """Container images."""

    jobs: str | None = _f(None, "Image with `kubetune-job` (prepare, train, evaluate; default: the operator's, "
                          "Helm value jobs.image): repository:tag or repository@sha256:digest.", max_length=512,
                          pattern=IMAGE)
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = _f("IfNotPresent", "Image pull policy.")


class FineTuneRunSpec(_Model):
    """Desired run: base model -> ordered SFT stages -> evaluated, exported models in the object store."""

    base_model: str = _f("Qwen/Qwen2.5-3B", "Base model: Hub id, s3:// URI, or bundled:smollm2-135m.",
                         min_length=1, max_length=512)
    storage: StorageSpec = _f(StorageSpec(), "Object store for data, checkpoints, models and reports.")
    stages: list[StageSpec] = _f(..., "Ordered stages; stage i+1 starts from stage i's merged model.",
                                 min_length=1, max_length=8)
    lora: LoraSpec = _f(LoraSpec(), "LoRA adapter shape.")
    training: TrainingSpec = _f(TrainingSpec(), "Training hyperparameters (stages may override).")
    evaluation: EvaluationSpec = _f(EvaluationSpec(), "Evaluation suites and gates.")
    resources: ResourcesSpec = _f(ResourcesSpec(), "Compute, placement and retries of the Jobs.")
    images: ImagesSpec = _f(ImagesSpec(), "Container images.")
    hub_token_secret: str | None = _f(None, "Secret with key HF_TOKEN for gated Hub models/datasets "
                                      "(injected by reference only).", max_length=253, pattern=DNS_SUBDOMAIN)
    cleanup_policy: Literal["Retain", "Delete"] = _f("Retain", "Delete: remove the run's artifacts from the "
                                                     "store when the FineTuneRun is deleted.")
    pushgateway: str | None = _f(None, "Prometheus Pushgateway URL the jobs push kubetune_* metrics to.",
                                 max_length=512)

    @field_validator("stages")
    @classmethod
    def _unique_stage_names(cls, stages: list[StageSpec]) -> list[StageSpec]:
        seen: set[str] = set()
        for i, stage in enumerate(stages):
            if stage.name in seen:
                raise ValueError(f"stages[{i}].name {stage.name!r} is used twice; stage names must be unique")
            seen.add(stage.name)
        return stages

    def stage_training(self, stage: StageSpec) -> TrainingSpec:  # type: ignore[valid-type]
        """spec.training with the stage's overrides applied."""
        if stage.training is None:
            return self.training
        return self.training.model_copy(update=stage.training.model_dump(exclude_none=True))

    def stage_hyperparameters(self, stage: StageSpec) -> dict[str, Any]:
        """The stage's LoRA and training hyperparameters by their declared (flag) names: what its train
        job's options take."""
        return {**declared_values(self.lora, hyperparams.LoraParameters),
                **declared_values(self.stage_training(stage), hyperparams.TrainingParameters)}


# ---------------------------------------------------------------- status
# What the operator writes. `reconcile.decide` builds these models and the handler writes their dump, so the
# status can only hold what the CRD declares; a figure must be finite (JSON has no NaN: an API server refuses
# the whole status write) and a share within [0, 1].

_Share = Annotated[float, Field(ge=0.0, le=1.0)]


class _Status(_Model):
    model_config = ConfigDict(validate_assignment=True, allow_inf_nan=False)


class StageStatus(_Status):
    """Training progress of one stage, read from its progress.json."""

    name: str = _f(..., "Stage name.")
    phase: str = _f("Pending", "Pending, Preparing, Training, Evaluating, Succeeded, Failed, Skipped.")
    step: int | None = _f(None, "Optimizer steps done.")
    total: int | None = _f(None, "Optimizer steps planned.")
    loss: float | None = _f(None, "Latest training loss.")
    tokens_per_second: float | None = _f(None, "Latest training throughput (all ranks).")
    world_size: int | None = _f(None, "Ranks training together (GPUs x nodes; 1 on CPU).")
    effective_batch: int | None = _f(None, "Rows per optimizer step: per-device batch x gradient accumulation x "
                                     "world size.")
    checkpoint: str | None = _f(None, "Latest checkpoint URI.")


class SuiteResult(_Status):
    """One suite's result for one evaluated model."""

    suite: str = _f(..., "Suite name.")
    accuracy: _Share | None = _f(None, "Share of items passed.")
    false_call_rate: _Share | None = _f(None, "Share of no-call items where the model called a tool.")


class EvaluationResult(_Status):
    """The evaluation of one model (base or after a stage)."""

    label: str = _f(..., "Model label: base or the stage name.")
    report: str = _f(..., "URI of report.json.")
    accuracy: _Share | None = _f(None, "Mean accuracy over suites.")
    suites: list[SuiteResult] = _f([], "Per-suite results.")


class Artifacts(_Status):
    """URIs of what the run produced."""

    root: str | None = _f(None, "Run root in the store.")
    datasets: dict[str, str] = _f({}, "Prepared data per stage.")
    adapters: dict[str, str] = _f({}, "LoRA adapter per stage.")
    models: dict[str, str] = _f({}, "Merged model per stage.")
    final_model: str | None = _f(None, "Merged model of the last stage (what to serve).")


class FineTuneRunStatus(_Status):
    """Observed state, written by the operator."""

    phase: str | None = _f(None, "Pending, Running, Succeeded or Failed.")
    current_stage: str | None = _f(None, "Stage now being prepared/trained/evaluated.")
    current_step: str | None = _f(None, "Plan step now running (e.g. train-chat).")
    progress: str | None = _f(None, "step/total of the training stage now running.")
    loss: float | None = _f(None, "Latest training loss.")
    accuracy: _Share | None = _f(None, "Mean accuracy of the latest evaluated model.")
    steps_done: list[str] = _f([], "Plan steps finished or verified.")
    stages: list[StageStatus] = _f([], "Per-stage progress.")
    evaluations: list[EvaluationResult] = _f([], "Evaluation results per model.")
    artifacts: Artifacts = _f(Artifacts(), "Produced artifact URIs.")
    conditions: list[Condition] = _f([], "Succeeded, Progressing, Degraded.", max_length=16)
    observed_generation: int | None = _f(None, "metadata.generation last reconciled.")

    @classmethod
    def read(cls, raw: dict[str, Any]) -> FineTuneRunStatus:
        """The operator's own fields of a status as read from the API server (kopf's are left out). A field
        that does not read as declared (written under an older schema, edited by hand) starts afresh: the
        reconcile rebuilds it from what it observes."""
        owned = {k: v for k, v in raw.items() if k in RESOURCE.status_keys}
        while True:
            try:
                return cls.model_validate(owned, by_alias=True, by_name=False)
            except ValidationError as exc:
                bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
                if not bad & owned.keys():
                    raise
                owned = {k: v for k, v in owned.items() if k not in bad}


class FineTuneRun(BaseModel):
    """A FineTuneRun manifest (what `kubectl apply` and `kubetune run` read)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    api_version: Literal["kubetune.io/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["FineTuneRun"] = KIND
    metadata: ObjectMeta
    spec: FineTuneRunSpec
    status: FineTuneRunStatus | None = None


def _immutable_rules(schema: dict[str, Any]) -> None:
    """CEL: unique stage names, at least one stage, and the artifact-shaping fields immutable."""
    stages = schema["properties"]["stages"]
    stages["x-kubernetes-validations"] = [
        {"rule": "self.all(s, self.exists_one(t, t.name == s.name))", "message": "stage names must be unique"},
        {"rule": "size(self) >= 1", "message": "at least one stage is required"},
    ]
    for name in IMMUTABLE_SPEC_FIELDS:
        prop = schema["properties"][name]
        prop.setdefault("x-kubernetes-validations", []).append(
            {"rule": "self == oldSelf",
             "message": f"spec.{name} is immutable once created; create a new FineTuneRun to change it"})
    # CEL cannot compare a field that is absent on one side: removing or adding an optional immutable field
    # is caught on the whole spec.
    schema["x-kubernetes-validations"] = [
        {"rule": "has(self.hubTokenSecret) == has(oldSelf.hubTokenSecret)",
         "message": "spec.hubTokenSecret is immutable once created"},
    ]


# Fields that shape the artifacts: immutable once created (see the restart semantics above).
IMMUTABLE_SPEC_FIELDS = ("baseModel", "storage", "stages", "lora", "training", "evaluation", "hubTokenSecret")

RESOURCE = ResourceKind(
    kind=KIND, plural=PLURAL, singular=SINGULAR, short_names=tuple(SHORT_NAMES), spec=FineTuneRunSpec,
    status=FineTuneRunStatus, manifest=FineTuneRun, spec_rules=_immutable_rules,
    printer_columns=(
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Stage", "type": "string", "jsonPath": ".status.currentStage"},
        {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
        {"name": "Loss", "type": "number", "jsonPath": ".status.loss"},
        {"name": "Accuracy", "type": "number", "jsonPath": ".status.accuracy"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ),
)


def parse_spec(obj: dict[str, Any]) -> FineTuneRunSpec:
    """A FineTuneRun's spec dict -> typed spec with defaults; SpecError names the offending field."""
    return RESOURCE.parse_spec(obj)


def parse_manifest(obj: dict[str, Any]) -> FineTuneRun:
    """A whole FineTuneRun document (apiVersion, kind, metadata, spec) -> typed model with defaults."""
    return RESOURCE.parse_manifest(obj)


def load_manifest(path: str | Path) -> FineTuneRun:
    """Read a YAML file holding one FineTuneRun; SpecError on a bad document (message names the field)."""
    return RESOURCE.load_manifest(path)
