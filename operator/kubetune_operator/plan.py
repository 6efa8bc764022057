"""The pure plan: a FineTuneRun spec -> the ordered steps that realise it. One plan, two executors.

    build_plan(run_name, namespace, spec, root_uri) -> list[Step]

`spec` is an `api.FineTuneRunSpec` (or its wire dict); `root_uri` is where artifacts go (`s3://<bucket>`
in a cluster, a local directory for `kubetune run`); the run's files live under
`<root_uri>/<namespace>/<run_name>/` (see `layout.RunLayout`). The order is: every `prepare-<stage>`,
then `eval-base` (when enabled), then per stage `train-<stage>` followed by `eval-<stage>` (every stage,
or only the last one when `evaluateEveryStage` is false). Stage i+1 trains from stage i's merged model.

Each Step carries the exact argv after `kubetune-job` (flags from jobs/kubetune_jobs/cli.py only), the
URIs that prove it done (`outputs`), and whether it wants a GPU. The Kubernetes executor turns a step
into a Job (`resources.job_for_step`); the local executor runs `kubetune-job *step.args`.
`step_done(step, location_fn)` checks a step's outputs in the store, so finished steps are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from . import api
from .layout import COMPLETE_MARKER, RunLayout, join

StepKind = Literal["prepare", "train", "evaluate"]
BASE_LABEL = "base"


@dataclass(frozen=True)
class Step:
    """One unit of work: `kubetune-job <args>`; done when every URI in `outputs` verifies."""

    name: str  # prepare-<stage> | eval-base | train-<stage> | eval-<stage>
    kind: StepKind
    args: tuple[str, ...]  # argv after `kubetune-job`
    outputs: tuple[str, ...]  # URIs that prove it done (see step_done)
    gpu: bool
    stage: str | None = None  # the stage it belongs to (None for eval-base)
    label: str | None = None  # evaluate: model label (base or stage name)
    inputs: tuple[str, ...] = field(default=())  # URIs it reads (data, models)


def _opt(flag: str, value: object) -> list[str]:
    return [] if value is None else [flag, str(value)]


def _prepare(layout: RunLayout, stage: api.StageSpec) -> Step:
    d = stage.dataset
    out = layout.data(stage.name)
    args = ["prepare", "--format", d.format, "--source", d.source, "--output", out,
            *_opt("--source-split", d.split), *_opt("--max-samples", d.max_samples),
            "--eval-fraction", str(d.eval_fraction), *_opt("--system-prompt", d.system_prompt)]
    if d.format == "xlam":
        args += [*_opt("--no-call-source", d.no_call_source), *_opt("--no-call-split", d.no_call_split),
                 "--no-call-fraction", str(d.no_call_fraction if d.no_call_source else 0.0),
                 "--turns-per-row", str(d.turns_per_row)]
    return Step(f"prepare-{stage.name}", "prepare", tuple(args), (layout.stats(stage.name),), gpu=False,
                stage=stage.name, inputs=(d.source,))


def _train(layout: RunLayout, run_name: str, spec: api.FineTuneRunSpec, stage: api.StageSpec, model: str) -> Step:
    t = spec.stage_training(stage)
    lora = spec.lora
    args = ["train", "--model", model, "--data", layout.data(stage.name), "--output", layout.stage(stage.name),
            "--backend", t.backend,
            "--lora-r", str(lora.r), "--lora-alpha", str(lora.alpha), "--lora-dropout", str(lora.dropout),
            "--target-modules", ",".join(lora.target_modules),
            "--batch-size", str(t.batch_size), "--grad-accum", str(t.grad_accum),
            "--learning-rate", str(t.learning_rate), "--epochs", str(t.epochs), "--max-steps", str(t.max_steps),
            "--max-seq-length", str(t.max_seq_length), "--warmup-ratio", str(t.warmup_ratio),
            "--lr-scheduler", t.scheduler, "--optim", t.optimizer, "--precision", t.precision,
            "--save-steps", str(t.save_steps), "--keep-checkpoints", str(t.keep_checkpoints), "--seed", str(t.seed)]
    if t.load_in_4bit:
        args.append("--load-in-4bit")
    if t.packing:
        args.append("--packing")
    args += ["--run-name", run_name, "--stage-name", stage.name, *_opt("--pushgateway", spec.pushgateway)]
    done = join(layout.merged(stage.name), COMPLETE_MARKER)
    gpu = spec.resources.gpus > 0
    return Step(f"train-{stage.name}", "train", tuple(args), (done,), gpu=gpu, stage=stage.name,
                inputs=(model, layout.data(stage.name)))


def _evaluate(layout: RunLayout, run_name: str, spec: api.FineTuneRunSpec, label: str, model: str,
              stage: str | None) -> Step:
    suites = spec.evaluation.suites
    # The heldout and chat suites read every stage's held-out rows (chat rows, tool and no-call rows).
    data = [layout.data(s.name) for s in spec.stages]
    args = ["evaluate", "--local-model", model, "--output", layout.eval(label)]
    for d in data:
        args += ["--data", d]
    for s in suites:
        args += ["--suite", s.name if s.limit is None else f"{s.name}:{s.limit}"]
    args += ["--max-new-tokens", str(spec.evaluation.max_new_tokens),
             "--run-name", run_name, "--model-label", label,
             *_opt("--pushgateway", spec.pushgateway)]
    return Step(f"eval-{label}", "evaluate", tuple(args), (layout.report(label),), gpu=spec.resources.gpus > 0,
                stage=stage, label=label, inputs=(model, *data))


def build_plan(run_name: str, namespace: str, spec: api.FineTuneRunSpec | dict[str, Any], root_uri: str) -> list[Step]:
    """Spec -> ordered steps (pure; same input, same output)."""
    if not isinstance(spec, api.FineTuneRunSpec):
        spec = api.parse_spec(spec)
    layout = RunLayout.of(root_uri, namespace, run_name)
    evaluate = bool(spec.evaluation.suites)
    steps = [_prepare(layout, stage) for stage in spec.stages]
    if evaluate and spec.evaluation.evaluate_base:
        steps.append(_evaluate(layout, run_name, spec, BASE_LABEL, spec.base_model, None))
    model = spec.base_model
    for i, stage in enumerate(spec.stages):
        steps.append(_train(layout, run_name, spec, stage, model))
        model = layout.merged(stage.name)
        last = i == len(spec.stages) - 1
        if evaluate and (spec.evaluation.evaluate_every_stage or last):
            steps.append(_evaluate(layout, run_name, spec, stage.name, model, stage.name))
    return steps


def _has_hash(stats: object) -> bool:
    return isinstance(stats, dict) and any(("hash" in k or "sha256" in k) and v for k, v in stats.items())


def step_done(step: Step, location_fn: Callable[[str], Any]) -> bool:
    """Whether a step's outputs exist and verify. `location_fn` is kubetune_jobs.storage.location or
    a credentialed equivalent (`store.locator`). Store errors propagate; missing/invalid outputs -> False."""
    for uri in step.outputs:
        loc = location_fn(uri)
        if not loc.exists():
            return False
        if step.kind == "prepare":
            stats = _read_json(loc)
            if not _has_hash(stats):
                return False
            # stats.json lists the files it vouches for (with hashes); each must still be there.
            files = stats.get("files") if isinstance(stats, dict) else None
            parent = uri.rsplit("/", 1)[0]
            if isinstance(files, dict) and not all(location_fn(join(parent, f)).exists() for f in files):
                return False
        elif step.kind == "evaluate":
            report = _read_json(loc)
            if not (isinstance(report, dict) and report.get("complete") is True):
                return False
    return True


def _read_json(loc: Any) -> object:
    try:
        return json.loads(loc.read_bytes())
    except (FileNotFoundError, ValueError):
        return None
