"""The local executor behind `kubetune run`: the operator's plan, run as subprocesses on this machine.

The same manifest, the same typed validation, the same `build_plan` and the very `kubetune-job`
command lines the Jobs run; only the executor differs. Artifacts go to a local directory (or the
S3/MinIO endpoint the manifest names), so an interrupted run picks up where it stopped: finished
steps verify and are skipped, and training resumes from its newest checkpoint. A train step with several
ranks (`resources.gpus` x `resources.nodes`) runs them all here, under torchrun (`local_command`): GPUs
where this machine has them, gloo on CPU elsewhere.

Ctrl-C and SIGTERM alike ask the running step to stop where it can resume (training checkpoints after its
current step) and wait for it; the command then exits 130 or 143, and the same command resumes. A failure
ends in one line naming its cause (`lifecycle`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from kubetune_jobs import storage
from kubetune_jobs.contract import records
from kubetune_jobs.contract.launch import TORCHRUN_MODULE, Launch, shutdown_env
from kubetune_jobs.contract.layout import PROGRESS_FILE, RunLayout, join, store_root
from kubetune_jobs.contract.locations import read_record
from kubetune_jobs.contract.store import resolve
from kubetune_operator.finetunerun import api
from kubetune_operator.finetunerun.plan import Step, build_plan, stage_models, step_done

from . import store_timeout
from .display import Done, StepDisplay, duration
from .lifecycle import Failure, exit_code, signal_name

JOB = [sys.executable, "-m", "kubetune_jobs.cli"]
POLL_SECONDS = 2.0
STOP_GRACE_SECONDS = 3600  # under torchrun: how long ranks may take to checkpoint after Ctrl-C (then killed)


def local_command(step: Step) -> list[str]:
    """The step's command line on this machine: the Job's, with every rank of the step on this one node."""
    if not step.launch.distributed:
        return [*JOB, *step.args]
    one_node = Launch(nproc_per_node=step.launch.world_size)
    return [sys.executable, "-m", TORCHRUN_MODULE, *one_node.torchrun_args(), *step.args]


def default_store() -> Path:
    root = os.environ.get("KUBETUNE_CACHE") or Path.home() / ".cache" / "kubetune"
    return Path(root) / "runs"


class RunFailed(Failure):
    """A step exited non-zero; the message names it, the last line of its log (a job's one-line reason)
    and the log."""


@dataclass
class LocalRun:
    run: api.FineTuneRun
    store: Path
    console: Console
    said: dict[str, str] = field(default_factory=dict, init=False)  # step kind -> precision last printed

    def __post_init__(self) -> None:
        spec = self.run.spec
        self.env = dict(os.environ)
        self.access = None
        if spec.storage.endpoint:
            # The manifest's object store; credentials come from this shell's environment, as the
            # operator takes them from the credentials Secret. The jobs get the same resolution.
            self.access = resolve(spec.storage.endpoint, secure=spec.storage.secure)
            self.env.update(self.access.env() if self.access else {})
            self.root = store_root(spec.storage.bucket)
            self.logs = default_store().parent / "logs" / self.run.metadata.namespace / self.run.metadata.name
        else:
            self.root = str(self.store)
            self.logs = self.store / self.run.metadata.namespace / self.run.metadata.name / "logs"
        self.layout = RunLayout.of(self.root, self.run.metadata.namespace, self.run.metadata.name)
        self.steps = build_plan(self.run.metadata.name, self.run.metadata.namespace, spec, self.root)

    def locate(self, uri: str) -> storage.Location:
        return storage.location(uri, self.access)

    def prepare(self) -> None:
        """Where the run writes, checked before any work: the local store and the logs, or the first contact
        with the object store (bounded: `store_timeout`)."""
        for label, path in (("--store", None if self.access else self.store), ("logs", self.logs)):
            if path is None:
                continue
            try:
                path.mkdir(parents=True, exist_ok=True)
                probe = path / f".kubetune-write-probe-{os.getpid()}"
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as exc:
                raise Failure(f"{label} {path}: cannot write there ({exc.strerror or exc})") from None
        if self.access:
            with store_timeout.first_contact():
                self.locate(self.layout.root).exists()

    def execute(self) -> None:
        total = len(self.steps)
        for number, step in enumerate(self.steps, 1):
            prefix = f"[{number}/{total}] {step.name}"
            if step_done(step, self.locate):
                self.console.print(f"[green]✓[/] {prefix}: already done, skipped")
                continue
            started = time.monotonic()
            self._run_step(step, prefix)
            self.console.print(f"[green]✓[/] {prefix}: done in {duration(time.monotonic() - started)}")
            self._say_precision(step)

    def _run_step(self, step: Step, prefix: str) -> None:
        log_path = self.logs / f"{step.name}.log"
        with open(log_path, "ab") as log, StepDisplay(self.console, prefix) as display:
            shown = local_command(step) if step.launch.distributed else ["kubetune-job", *step.args]
            log.write(f"\n$ {' '.join(shown)}\n".encode())
            log.flush()
            env = {**self.env, **shutdown_env(STOP_GRACE_SECONDS)} if step.launch.distributed else self.env
            proc = subprocess.Popen(local_command(step), stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                while proc.poll() is None:
                    display.update(self._done(step))
                    time.sleep(POLL_SECONDS if step.kind == "train" else 0.5)
            except KeyboardInterrupt as interrupt:
                # A terminal's Ctrl-C reaches the job too, a SIGINT or SIGTERM sent to this process alone
                # does not: SIGTERM asks it for the same thing either way (checkpoint after this step, stop).
                proc.send_signal(signal.SIGTERM)
                try:
                    display.stop()
                    self.console.print(f"[yellow]stopping[/] {prefix} ({signal_name(interrupt)}): it saves a "
                                       "checkpoint after its current step and exits; Ctrl-C again stops it at "
                                       "once and loses that step")
                finally:
                    _wait_stopped(proc)
                raise
            except BaseException:
                # This command fails while the job runs (its output closed, a bug): the job stops as for
                # Ctrl-C rather than running on without anyone to report to.
                proc.send_signal(signal.SIGTERM)
                _wait_stopped(proc)
                raise
        if proc.returncode != 0:
            last = deque((line for line in log_path.read_text(errors="replace").splitlines() if line.strip()),
                         maxlen=1)
            said = f": {last[0].strip()}" if last else ""
            raise RunFailed(f"{step.name} failed (exit {proc.returncode}){said} (log: {log_path})")

    def _say_precision(self, step: Step) -> None:
        """What a train or in-process evaluate step computed in and why (from its record), the first
        time for training and for generation, and again only if it changes."""
        if step.kind == "prepare" or not step.record:
            return
        kind = records.Progress if step.kind == "train" else records.ReportSummary
        try:
            record = read_record(self.locate(step.record), kind)
        except storage.StorageError:
            return
        name = record.precision if record is not None else None
        if not name or self.said.get(step.kind) == name:
            return  # an endpoint's evaluation has none; the same verdict again says nothing new
        self.said[step.kind] = name
        work = "training" if step.kind == "train" else "generation"
        self.console.print(f"  {work} in {name}: {record.precision_reason or ''}", markup=False,
                           highlight=False, emoji=False, soft_wrap=True)

    def _done(self, step: Step) -> Done | None:
        """What a running train or evaluate step has done, from the progress.json it writes."""
        if step.kind == "train" and step.stage:
            uri = self.layout.progress(step.stage)
        elif step.kind == "evaluate" and step.outputs:
            uri = join(step.outputs[0].rsplit("/", 1)[0], PROGRESS_FILE)
        else:
            return None
        try:
            progress = read_record(self.locate(uri), records.Progress)
        except (OSError, storage.StorageError):  # TooLarge among them
            return None
        if progress is None:
            return None
        detail = []
        if progress.loss is not None:
            detail.append(f"loss {progress.loss:.3f}")
        if progress.tokens_per_second:
            detail.append(f"{progress.tokens_per_second:.0f} tok/s")
        if progress.items_per_second:
            detail.append(f"{progress.items_per_second:.2f} items/s")
        if (progress.world_size or 1) > 1:
            detail.append(f"{progress.world_size} ranks, batch {progress.effective_batch}")
        if progress.eta_seconds is not None:
            detail.append(f"ETA {duration(progress.eta_seconds)}")
        return Done(progress.step, progress.total, "steps" if step.kind == "train" else "items", ", ".join(detail))

    def reports(self) -> list[tuple[str, str]]:
        """(label, report URI) of every evaluation in plan order."""
        return [(s.label or s.name, s.outputs[0]) for s in self.steps if s.kind == "evaluate"]

    def compare_table(self) -> str:
        reports = self.reports()
        if not reports:
            return ""
        local, unusable = [], []
        for label, uri in reports:
            loc = self.locate(uri)
            if not loc.exists():
                continue
            if storage.is_remote(uri):
                path = self.logs / f"report-{label}.json"
                try:
                    path.write_bytes(loc.read_bytes(limit=records.ReportSummary.max_bytes))
                except storage.StorageError as exc:
                    unusable.append(f"{label}: {exc}\n")
                    continue
                local.append(str(path))
            else:
                local.append(uri)
        out = subprocess.run([*JOB, "evaluate", "--compare", *local], capture_output=True, text=True,
                             env=self.env) if local else None
        table = "" if out is None else out.stdout if out.returncode == 0 else out.stderr
        return table + "".join(unusable)

    def final_model(self) -> str:
        """The last stage's merged model, or its adapter where that stage publishes the adapter only."""
        adapter, merged = stage_models(self.layout, self.run.spec)[self.run.spec.stages[-1].name]
        return merged or adapter

    def summary(self) -> dict[str, object]:
        """The finished run as a FineTuneRun object with its status (what `kubetune serve` reads to find
        the run's models, as the operator reads a run's status in a cluster)."""
        meta = self.run.metadata
        stages = self.run.spec.stages
        models = stage_models(self.layout, self.run.spec)
        merged = {stage: model for stage, (_, model) in models.items() if model}
        final = {"finalModel": merged[stages[-1].name]} if stages[-1].name in merged else {}
        return {
            "apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": meta.name, "namespace": meta.namespace},
            "spec": {"baseModel": self.run.spec.base_model, "stages": [{"name": s.name} for s in stages]},
            "status": {"phase": "Succeeded", "artifacts": {
                "root": self.layout.root, **final,
                "datasets": {s.name: self.layout.data(s.name) for s in stages},
                "adapters": {stage: adapter for stage, (adapter, _) in models.items()},
                "models": merged}},
            "reports": dict(self.reports()),
        }


def _wait_stopped(proc: subprocess.Popen[bytes]) -> None:
    """Wait for a job asked to stop. No deadline: on a busy machine one step can take minutes, and killing
    the job mid-save would lose the very checkpoint the user is waiting for; a second interrupt kills it."""
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.kill()
        proc.wait()


def load(path: str | Path) -> api.FineTuneRun:
    """Read and validate a manifest exactly as the operator does (every document of the file, as `kubetune
    validate` reads it); SpecError names every bad field."""
    return api.RESOURCE.load_manifest(path)


def run(manifest: str | Path, store: Path | None, serve: bool, port: int, console: Console) -> int:
    try:
        spec_run = load(manifest)
    except api.SpecError as exc:
        console.print(f"invalid manifest {manifest}: {exc}", markup=False, emoji=False, highlight=False,
                      soft_wrap=True)
        return 2
    local = LocalRun(spec_run, Path(store or default_store()).expanduser(), console)
    name = spec_run.metadata.name
    console.print(f"[bold]kubetune run[/] {name}: {len(local.steps)} steps, base model "
                  f"{escape(spec_run.spec.base_model)}, artifacts in {escape(local.layout.root)}", soft_wrap=True)
    started = time.monotonic()
    try:
        local.prepare()
        local.execute()
    except KeyboardInterrupt as interrupt:
        console.print(f"[yellow]interrupted[/] ({signal_name(interrupt)}); run the same command again to resume "
                      f"{name}", soft_wrap=True)
        return exit_code(interrupt)
    console.print(f"\n[bold]{name}[/] finished in {duration(time.monotonic() - started)}\n")
    table = local.compare_table()
    if table:
        # soft_wrap: a table is never folded at the terminal's (or a log file's 80-column) width.
        console.print(table, markup=False, highlight=False, soft_wrap=True)
    console.print(f"model:     {local.final_model()}", soft_wrap=True)
    console.print(f"reports:   {', '.join(uri for _, uri in local.reports())}", soft_wrap=True)
    console.print(f"logs:      {local.logs}", soft_wrap=True)
    local.locate(local.layout.summary).write_bytes(json.dumps(local.summary(), indent=2).encode())
    from . import report

    try:
        console.print(f"report:    {report.write(local.layout.root)}  (curves, scores, examples)", soft_wrap=True)
    except (report.ReportError, OSError, storage.StorageError) as exc:
        console.print(f"[yellow]note[/] no report.html: {escape(str(exc))}", soft_wrap=True)
    if serve:
        from . import serve as serving

        return serving.serve_run(spec_run, local.store, port, console)
    return 0
