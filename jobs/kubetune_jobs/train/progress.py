"""Progress for people and for the operator: `<output>/progress.json`, `<output>/curve.json` and pushed metrics.

progress.json is a `contract.records.Progress`: step, total, loss, learning rate, tokens and tokens/s,
ETA, epoch, the batch plan (world size, per-device batch, accumulation, effective batch) and state
(`starting`, `running`, `exporting`, `succeeded`, `preempted`, `failed`), the step this process resumed
from, eval losses, the newest published checkpoint's URI (which the operator shows in the stage's
status), the step fingerprint, the precision it trains in and why (`auto`'s verdict for this machine, or
the requested value), and on CUDA the peak GPU memory. The local progress bar is the Trainer's own (tqdm).
curve.json (`contract.records.TrainingCurve`) keeps the loss, eval loss, learning rate and tokens/s of every
logged step for the run report; a resumed stage keeps the points up to the step it resumed from.

Writes that only move the figures along are best-effort, one attempt each: the next update carries
the same fields, and waiting out a store outage there would stall training. Writes that change
`state` use the store's full retry budget, since the operator and a re-run act on them.

`tokens_per_second` counts non-padding tokens from the end of this process's first step: the first step
also pays for CUDA's lazy start and Unsloth's kernel compilation, which say nothing about the rate the
rest of the run goes at (until a second step is done, it is the first step's own rate). Under torchrun
the token count is the Trainer's, gathered over every rank; only rank 0 writes and pushes.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from .. import storage
from ..contract import records
from ..contract.layout import CURVE_FILE, PROGRESS_FILE
from . import metrics

log = logging.getLogger(__name__)
_FIELDS = frozenset(records.Progress.model_fields)


class Progress:
    """The current state of a stage; every update rewrites progress.json and pushes the metrics."""

    def __init__(self, output: storage.Location, pushgateway: str | None, run: str, stage: str,
                 fingerprint: str | None = None, namespace: str | None = None, *, publish: bool = True) -> None:
        self.loc = output.child(PROGRESS_FILE)
        self.curve_loc = output.child(CURVE_FILE)
        self.publish = publish  # false on every rank but 0: the figures are kept, nothing is written
        self.pusher = metrics.MetricsPusher(pushgateway, run, stage, namespace) if pushgateway and publish else None
        self._unwritten = False
        self.data: dict[str, Any] = records.Progress(fingerprint=fingerprint).dump()
        self.points: dict[int, dict[str, Any]] = {}  # step -> its figures (curve.json)

    def resumed(self, step: int) -> None:
        """Training (re)starts at `step`: keep the curve a previous attempt recorded up to it, drop the rest
        (steps after the checkpoint are trained again)."""
        if not self.publish:
            return
        try:
            with storage.retry_budget(0):
                curve = records.read(records.TrainingCurve, self.curve_loc.read_bytes())
        except (FileNotFoundError, OSError, storage.StorageError):
            curve = None
        self.points = {p.step: p.dump() for p in (curve.points if curve else []) if p.step <= step}

    def point(self, step: int, **figures: float | None) -> None:
        """Record figures of `step` in curve.json (best-effort, as the figures of progress.json)."""
        unknown = set(figures) - set(records.CurvePoint.model_fields)
        if unknown:
            raise KeyError(f"not fields of curve.json: {', '.join(sorted(unknown))}")
        entry = self.points.setdefault(step, {"step": step})
        entry.update({k: v for k, v in figures.items() if v is not None})
        if not self.publish:
            return
        curve = records.TrainingCurve(points=[self.points[s] for s in sorted(self.points)])
        try:
            with storage.retry_budget(0):
                self.curve_loc.write_json(curve.dump())
        except (OSError, storage.StorageError) as exc:
            log.debug("could not write %s (%s); the next logged step writes the whole curve again",
                      self.curve_loc.uri, exc)

    def update(self, **fields: Any) -> None:
        unknown = set(fields) - _FIELDS
        if unknown:
            raise KeyError(f"not fields of progress.json: {', '.join(sorted(unknown))}")
        self.data.update(fields)
        self.data["updated_at"] = time.time()
        if not self.publish:
            return
        try:
            record = records.Progress.model_validate(self.data).dump()
            if "state" in fields:
                self.loc.write_json(record)
            else:
                with storage.retry_budget(0):
                    self.loc.write_json(record)
        except (OSError, storage.StorageError) as exc:
            if not self._unwritten:
                log.warning("could not write %s (%s); training goes on and later updates try again",
                            self.loc.uri, exc)
            self._unwritten = True
        else:
            if self._unwritten:
                log.info("%s is written again", self.loc.uri)
            self._unwritten = False
        if self.pusher:
            self.pusher.push({metric.name: self.data[key] for key, metric in metrics.FIELDS.items()},
                             force="state" in fields)


def make_callback(progress: Progress) -> Any:
    """A TrainerCallback feeding `progress` (built lazily: transformers is imported after the backend)."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def __init__(self) -> None:
            self.start: tuple[float, int, int] = (0.0, 0, 0)  # (time, step, tokens) at train begin
            self.warm: tuple[float, int, int] | None = None  # the same after this process's first step

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = (time.monotonic(), state.global_step, state.num_input_tokens_seen)
            self.warm = None
            progress.resumed(state.global_step)
            if state.global_step:
                log.info("resumed at step %d of %d", state.global_step, state.max_steps)
            progress.update(state="running", step=state.global_step, total=state.max_steps,
                            start_step=state.global_step, epoch=state.epoch, tokens=state.num_input_tokens_seen)

        def on_step_end(self, args, state, control, **kwargs):
            if self.warm is None:
                self.warm = (time.monotonic(), state.global_step, state.num_input_tokens_seen)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            mark = self.warm if self.warm is not None and state.global_step > self.warm[1] else self.start
            t0, step0, tokens0 = mark
            elapsed = max(time.monotonic() - t0, 1e-9)
            done = state.global_step - step0
            fields: dict[str, Any] = {"step": state.global_step, "total": state.max_steps, "epoch": state.epoch,
                                      "tokens": state.num_input_tokens_seen,
                                      "tokens_per_second": round((state.num_input_tokens_seen - tokens0)
                                                                 / elapsed, 2)}
            if done > 0:
                fields["eta_seconds"] = round((state.max_steps - state.global_step) * elapsed / done, 1)
            peak = _gpu_memory_peak_gib()
            if peak is not None:
                fields["gpu_memory_peak_gib"] = peak
            if "loss" in logs:
                fields["loss"] = float(logs["loss"])
            if "learning_rate" in logs:
                fields["learning_rate"] = float(logs["learning_rate"])
            if "eval_loss" in logs:
                # At step 0 it is the evaluation before any training (the Trainer's eval_on_start).
                fields["eval_loss" if state.global_step > 0 else "eval_loss_start"] = float(logs["eval_loss"])
            progress.update(**fields)
            progress.point(state.global_step, loss=fields.get("loss"), learning_rate=fields.get("learning_rate"),
                           eval_loss=float(logs["eval_loss"]) if "eval_loss" in logs else None,
                           tokens_per_second=fields["tokens_per_second"] if "loss" in logs else None)

    return ProgressCallback()


def _gpu_memory_peak_gib() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 2)
