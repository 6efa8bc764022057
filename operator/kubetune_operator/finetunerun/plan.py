"""The pure plan: a FineTuneRun spec -> the ordered steps that realise it. One plan, two executors.

    build_plan(run_name, namespace, spec, root_uri, uid=..., pushgateway=...) -> list[Step]

`spec` is an `api.FineTuneRunSpec` (or its wire dict); `root_uri` is where artifacts go (`s3://<bucket>`
in a cluster, a local directory for `kubetune run`); the run's files live under
`<root_uri>/<namespace>/<run_name>/` (`contract.layout.RunLayout`); train and evaluate steps label their
metrics with the run, its namespace and their stage or model. The order is: every `prepare-<stage>`,
then `eval-base` (when enabled), then per stage `train-<stage>` followed by `eval-<stage>` (every stage,
or only the last one when `evaluateEveryStage` is false). Stage i+1 trains from stage i's merged model.

Each Step carries the exact argv after `kubetune-job` (built from the jobs' own option types; a train
step's hyperparameters pass by their declared names, `contract.hyperparams`), the URIs that prove it done,
whether it wants a GPU, its process layout (`contract.launch.Launch`: a train step spans `gpus` ranks on
each of `nodes` nodes), and its fingerprint: a digest of the flags that change its outputs and are set to
another value than their default, the run's uid and the fingerprints of the steps it reads from. The job records the fingerprint
with its outputs, and `step_done` counts a step as done only when its outputs verify *and* carry that
fingerprint, so an edited manifest or a run recreated under the same name never reuses stale work.
The Kubernetes executor turns a step into a Job (`jobs.job_for_step`); the local executor runs
`kubetune-job *step.args`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from kubetune_jobs.contract import records
from kubetune_jobs.contract.launch import Launch
from kubetune_jobs.contract.layout import COMPLETE_MARKER, PREPARE_FILES, RunLayout, join
from kubetune_jobs.contract.options import EvaluateOptions, PrepareOptions, TrainOptions
from kubetune_jobs.contract.suites import suite_arg

from . import api

StepKind = Literal["prepare", "train", "evaluate"]
SINGLE = Launch()  # one process: `kubetune-job` itself
BASE_LABEL = "base"


@dataclass(frozen=True)
class Step:
    """One unit of work: `kubetune-job <args>`; done when `outputs` verify with this `fingerprint`."""

    name: str  # prepare-<stage> | eval-base | train-<stage> | eval-<stage>
    kind: StepKind
    args: tuple[str, ...]  # argv after `kubetune-job`
    outputs: tuple[str, ...]  # URIs that prove it done (see step_done)
    gpu: bool
    fingerprint: str
    stage: str | None = None  # the stage it belongs to (None for eval-base)
    label: str | None = None  # evaluate: model label (base or stage name)
    record: str | None = None  # the URI of the record that carries the fingerprint
    launch: Launch = field(default_factory=Launch)  # train with several GPUs or nodes runs under torchrun


def _fingerprint(options: Any, uid: str, upstream: list[str]) -> str:
    identity = {"argv": options.command_line_identity(), "uid": uid, "upstream": upstream}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def _step(name: str, kind: StepKind, options: Any, *, uid: str, upstream: list[str], outputs: tuple[str, ...],
          record: str, gpu: bool, stage: str | None = None, label: str | None = None,
          launch: Launch = SINGLE) -> Step:
    fingerprint = _fingerprint(options, uid, upstream)
    args = dataclasses.replace(options, fingerprint=fingerprint).command_line()
    return Step(name, kind, tuple(args), outputs, gpu, fingerprint, stage, label, record, launch)


def train_launch(resources: api.ResourcesSpec) -> Launch:
    """One rank per GPU on each node (a CPU-only step is one process)."""
    return Launch(nproc_per_node=max(resources.gpus, 1), nnodes=resources.nodes)


def _prepare(layout: RunLayout, stage: api.StageSpec, uid: str) -> Step:
    d = stage.dataset
    xlam = d.format == "xlam"
    options = PrepareOptions(
        format=d.format, source=d.source, output=layout.data(stage.name), source_split=d.split,
        max_samples=d.max_samples, eval_fraction=d.eval_fraction, system_prompt=d.system_prompt,
        no_call_source=d.no_call_source if xlam else None, no_call_split=d.no_call_split if xlam else None,
        no_call_fraction=(d.no_call_fraction if d.no_call_source else 0.0) if xlam else PrepareOptions.no_call_fraction,
        turns_per_row=d.turns_per_row if xlam else PrepareOptions.turns_per_row)
    return _step(f"prepare-{stage.name}", "prepare", options, uid=uid, upstream=[], gpu=False, stage=stage.name,
                 outputs=(layout.stats(stage.name),), record=layout.stats(stage.name))


def _train(layout: RunLayout, run_name: str, spec: api.FineTuneRunSpec, stage: api.StageSpec, model: str,
           upstream: list[str], uid: str, pushgateway: str | None, namespace: str) -> Step:
    options = TrainOptions(model=model, data=layout.data(stage.name), output=layout.stage(stage.name),
                           **spec.stage_hyperparameters(stage), run_name=run_name, stage_name=stage.name,
                           pushgateway=pushgateway, namespace=namespace)
    # The stage's newest export proves it done: the merged model, or the adapter where it is not merged.
    done = join(layout.merged(stage.name) if options.merge else layout.adapter(stage.name), COMPLETE_MARKER)
    return _step(f"train-{stage.name}", "train", options, uid=uid, upstream=upstream, outputs=(done,),
                 record=layout.progress(stage.name), gpu=spec.resources.gpus > 0, stage=stage.name,
                 launch=train_launch(spec.resources))


def _evaluate(layout: RunLayout, run_name: str, spec: api.FineTuneRunSpec, label: str, model: str,
              stage: str | None, upstream: list[str], uid: str, pushgateway: str | None, namespace: str) -> Step:
    # The heldout and chat suites read every stage's held-out rows (chat rows, tool and no-call rows).
    options = EvaluateOptions(
        local_model=model, output=layout.eval(label), data=tuple(layout.data(s.name) for s in spec.stages),
        suite=tuple(suite_arg(s.name, s.limit) for s in spec.evaluation.suites),
        max_new_tokens=spec.evaluation.max_new_tokens, run_name=run_name, model_label=label,
        pushgateway=pushgateway, namespace=namespace)
    return _step(f"eval-{label}", "evaluate", options, uid=uid, upstream=upstream, outputs=(layout.report(label),),
                 record=layout.report(label), gpu=spec.resources.gpus > 0, stage=stage, label=label)


def build_plan(run_name: str, namespace: str, spec: api.FineTuneRunSpec | dict[str, Any], root_uri: str, *,
               uid: str = "", pushgateway: str | None = None) -> list[Step]:
    """Spec -> ordered steps (pure; same input, same output). `uid` is the run's metadata.uid (empty for
    `kubetune run`); `pushgateway` is the operator's default for runs that name none."""
    if not isinstance(spec, api.FineTuneRunSpec):
        spec = api.parse_spec(spec)
    layout = RunLayout.of(root_uri, namespace, run_name)
    pushgateway = spec.pushgateway or pushgateway
    evaluate = bool(spec.evaluation.suites)
    prepares = [_prepare(layout, stage, uid) for stage in spec.stages]
    data_fps = [p.fingerprint for p in prepares]
    steps = list(prepares)
    if evaluate and spec.evaluation.evaluate_base:
        steps.append(_evaluate(layout, run_name, spec, BASE_LABEL, spec.base_model, None, data_fps, uid, pushgateway,
                               namespace))
    model, model_fp = spec.base_model, None
    for i, (stage, prepared) in enumerate(zip(spec.stages, prepares, strict=True)):
        upstream = [prepared.fingerprint] + ([model_fp] if model_fp else [])
        train = _train(layout, run_name, spec, stage, model, upstream, uid, pushgateway, namespace)
        steps.append(train)
        model, model_fp = layout.merged(stage.name), train.fingerprint
        last = i == len(spec.stages) - 1
        if evaluate and (spec.evaluation.evaluate_every_stage or last):
            steps.append(_evaluate(layout, run_name, spec, stage.name, model, stage.name, [model_fp, *data_fps], uid,
                                   pushgateway, namespace))
    return steps


def stage_models(layout: RunLayout, spec: api.FineTuneRunSpec) -> dict[str, tuple[str, str | None]]:
    """stage -> (its adapter's URI, its merged model's URI or None where the stage publishes the adapter only)."""
    return {s.name: (layout.adapter(s.name), layout.merged(s.name) if spec.stage_training(s).merge else None)
            for s in spec.stages}


def _read(loc: Any, record: type[records.R]) -> records.R | None:
    try:
        return records.read(record, loc.read_bytes())
    except FileNotFoundError:
        return None


def step_done(step: Step, location_fn: Callable[[str], Any]) -> bool:
    """Whether a step's outputs exist, verify, and were made for this very step (same fingerprint).
    `location_fn` maps a URI to a `kubetune_jobs.storage` Location (bound to the run's store). Store
    errors propagate; missing, invalid or foreign outputs -> False."""
    if not all(location_fn(uri).exists() for uri in step.outputs):
        return False
    record = location_fn(step.record) if step.record else None
    if step.kind == "prepare":
        stats = _read(record, records.PrepareStats)
        if stats is None or stats.step_fingerprint != step.fingerprint:
            return False
        # stats.json lists the files it vouches for (with hashes); each must still be there. The names come
        # from the store: only prepare's own file names are ever looked up.
        if not set(stats.files) <= set(PREPARE_FILES):
            return False
        parent = step.record.rsplit("/", 1)[0]
        return all(location_fn(join(parent, name)).exists() for name in stats.files)
    if step.kind == "train":
        progress = _read(record, records.Progress)
        return progress is not None and progress.state == "succeeded" and progress.fingerprint == step.fingerprint
    report = _read(record, records.ReportSummary)
    return report is not None and report.complete and report.fingerprint == step.fingerprint
