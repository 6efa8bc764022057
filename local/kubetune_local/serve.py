"""`kubetune serve MANIFEST`: the same ModelServe on one machine. Real vLLM (its own virtualenv, `make
vllm-env`) serves the model from the local store with the very argv the Deployment's container gets
(`vllm.argv`); it prints the endpoint and a ready-to-paste request with `tools`, and stops cleanly on
Ctrl-C. Where vLLM cannot run, `transformers serve` is a labelled fallback (the same API, another server).

With `--against MODEL` it runs the promotion gate first, one server after the other: the manifest's model
is the candidate, MODEL the one serving (or the report.json of its evaluation on the same suites, as the
operator reuses recorded scores); both are evaluated on `spec.promotion.suites` through their endpoints,
the gate decides (`kubetune gate`'s function and table), and the winner is served (`--gate-only`: decide and
exit, 0 promoted, 3 rejected, 2 a report that is not one).

Every server it starts is stopped on the way out, however it ends (Ctrl-C or SIGTERM while vLLM starts,
while the gate evaluates, while it serves); a failure ends in one line naming its cause (`lifecycle`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from kubetune_jobs import storage
from kubetune_jobs.contract import env as names
from kubetune_jobs.contract import records
from kubetune_jobs.contract.adapters import RUNTIME_UPDATES_ENV
from kubetune_jobs.contract.layout import (
    BENCH_FILE,
    COMPLETE_MARKER,
    COMPLETE_MARKER_MAX_BYTES,
    REPORT_FILE,
    SUMMARY_MAX_BYTES,
    RunLayout,
    ServeLayout,
    join,
)
from kubetune_jobs.contract.locations import TooLarge
from kubetune_jobs.contract.options import BenchOptions, EvaluateOptions
from kubetune_jobs.contract.store import resolve
from kubetune_jobs.contract.suites import suite_arg
from kubetune_jobs.serving import process
from kubetune_jobs.serving.example import curl
from kubetune_jobs.serving.vllm_server import VLLMServer
from kubetune_operator.apitypes import SpecError
from kubetune_operator.finetunerun import api as ftr_api
from kubetune_operator.modelserve import api, promotion, source, vllm

from . import store_timeout
from .adapters import AdapterAgent
from .gate import exit_code, read_file, show
from .lifecycle import Failure, signal_name
from .live import LiveProbe, RollBack

JOB = [sys.executable, "-m", "kubetune_jobs.cli"]


class ServeError(Failure):
    """The manifest names nothing this machine can serve; the message says why and what to run."""


def load(path: str | Path) -> api.ModelServe:
    """Read and validate a ModelServe manifest as the operator does (every document of the file, as
    `kubetune validate` reads it)."""
    return api.RESOURCE.load_manifest(path)


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


class Local:
    """One ModelServe's model on this machine: where its files are, and vLLM's argv for them."""

    def __init__(self, serve: api.ModelServe, store: Path, console: Console) -> None:
        self.serve, self.console = serve, console
        self.spec = serve.spec
        if self.spec.resources.gpus and not _cuda():
            console.print(f"[yellow]note[/] no CUDA device here: serving {serve.metadata.name} on the CPU "
                          f"(spec.resources.gpus {self.spec.resources.gpus} applies in a cluster)")
            self.spec = self.spec.model_copy(update={"resources": self.spec.resources.model_copy(update={"gpus": 0})})
        self.access = resolve(self.spec.storage.endpoint, secure=self.spec.storage.secure) \
            if self.spec.storage.endpoint else None
        self.root = f"s3://{self.spec.storage.bucket}" if self.access else str(store)
        if not self.access and store.exists() and not store.is_dir():
            raise ServeError(f"--store {store}: not a directory (the artifact directory `kubetune run` used)")
        self.workdir = Path(tempfile.mkdtemp(prefix="kubetune-serve-"))

    def locate(self, uri: str) -> storage.Location:
        if storage.is_remote(uri) and self.access is None and resolve() is None:
            raise ServeError(f"{uri} is in an object store, and none is named: set spec.storage.endpoint "
                             f"(keys from {names.ACCESS_KEY} and {names.SECRET_KEY}) or {names.S3_ENDPOINT}")
        return storage.location(uri, self.access)

    def reach(self) -> None:
        """The first contact with the store the manifest's model is in (when it is in one): an unreachable
        store is waited for within the first-contact bound, saying so, then given up on."""
        model = self.spec.model
        if model.fine_tune_run:
            uri = RunLayout.of(self.root, self.serve.metadata.namespace, model.fine_tune_run.name).summary
        elif model.uri:
            uri = join(model.uri, COMPLETE_MARKER)
        else:
            return
        if storage.is_remote(uri):
            with store_timeout.first_contact():
                self.locate(uri).exists()

    def run_object(self, name: str | None = None, field: str = "spec.model.fineTuneRun.name") -> dict[str, Any] | None:
        """The FineTuneRun `kubetune run` finished into this store (its summary), or None: spec.model's, or the
        one `field` names."""
        if name is None:
            ref = self.spec.model.fine_tune_run
            assert ref is not None
            name = ref.name
        layout = RunLayout.of(self.root, self.serve.metadata.namespace, name)
        try:
            run = json.loads(self.locate(layout.summary).read_bytes(limit=SUMMARY_MAX_BYTES))
        except FileNotFoundError:
            return None
        except TooLarge as exc:
            raise ServeError(f"{field}: the run's summary {exc}") from None
        except ValueError as exc:  # not UTF-8, not JSON
            raise ServeError(f"{layout.summary}: not the summary `kubetune run` writes ({exc})") from None
        if not isinstance(run, dict):
            raise ServeError(f"{layout.summary}: not the summary `kubetune run` writes (not a JSON object)")
        return run

    def target(self) -> source.Target:
        run = self.run_object() if self.spec.model.fine_tune_run else None
        if self.spec.model.fine_tune_run and run is None:
            ref = self.spec.model.fine_tune_run.name
            raise ServeError(f"spec.model.fineTuneRun.name: no finished FineTuneRun {ref!r} in {self.root} "
                             f"(run `kubetune run <its manifest>` first, or pass --store)")
        resolved = source.resolve(self.spec, run)
        if isinstance(resolved, tuple):
            target, where = resolved
            markers: dict[str, bytes | None] = {}
            unusable: dict[str, str] = {}
            for uri in (where.model_uri, where.adapter_uri):
                if uri:
                    try:
                        markers[uri] = self.locate(join(uri, COMPLETE_MARKER)).read_bytes(
                            limit=COMPLETE_MARKER_MAX_BYTES)
                    except FileNotFoundError:
                        markers[uri] = None
                    except TooLarge as exc:
                        unusable[uri] = str(exc)
            resolved = source.with_markers(target, where, markers, unusable)
        if not isinstance(resolved, source.Target):
            raise ServeError(resolved.message)
        return resolved

    def _local_dir(self, uri: str) -> str:
        if not storage.is_remote(uri):
            return uri
        from kubetune_jobs import models

        os.environ.update(self.access.env() if self.access else {})
        return models.resolve(uri)  # a complete directory, downloaded once into the cache and verified

    def files(self, target: source.Target) -> vllm.ModelFiles:
        model = self._local_dir(target.uri) if target.uri else str(target.hub)
        if model.startswith("bundled:") or (target.hub or "").startswith("bundled:"):
            from kubetune_jobs import models

            model = models.resolve(model if model.startswith("bundled:") else str(target.hub))
        template = None
        if self.spec.vllm.chat_template:
            template = str(self.workdir / "chat_template.jinja")
            Path(template).write_text(self.spec.vllm.chat_template)
        elif (Path(model) / "chat_template.jinja").exists():
            template = str(Path(model) / "chat_template.jinja")
        adapter = self._local_dir(target.adapter) if target.adapter else None
        return vllm.ModelFiles(model=model, chat_template=template, adapter=adapter)

    def argv(self, target: source.Target, port: int, template: str | None = None) -> list[str]:
        """vLLM's flags for `target`; `template`, when given, replaces the one the model's files bring."""
        files = self.files(target)
        if template:
            files = vllm.ModelFiles(files.model, template, files.adapter)
        return vllm.argv(self.spec, self.serve.served_name(), files, host="127.0.0.1", port=port)


def server(argv: list[str], console: Console, *, fallback_model: str | None = None, adapters: bool = False) -> Any:
    """A server to start (`with` it): real vLLM, else (labelled) `transformers serve` on the same model.
    `adapters`: vLLM takes runtime adapter loads (spec.adapters; the fallback serves none)."""
    from kubetune_jobs.serving import vllm_server

    env = dict(os.environ)
    key = os.environ.get(names.API_KEY)
    if key:
        env[vllm.API_KEY_ENV] = key
    if adapters:
        env[RUNTIME_UPDATES_ENV] = "True"
    try:
        return vllm_server.VLLMServer(argv, env=env)
    except vllm_server.NotInstalled as exc:
        if fallback_model is None:
            raise ServeError(f"the gate evaluates through vLLM: {exc}") from None
        from kubetune_jobs.serving import template, transformers_server

        console.print(f"[yellow]fallback[/] {exc}\n  serving with `transformers serve` instead: the same "
                      "OpenAI-compatible API, not vLLM (no continuous batching, no vLLM metrics)")
        servable = template.servable_copy(fallback_model, Path(tempfile.mkdtemp(prefix="kubetune-tf-")) / "model")
        port = int(argv[argv.index("--port") + 1])
        return transformers_server.LocalServer(servable, port=port)


def _job_output(local: Local, argv: list[str], out: str, name: str,
                record: type[records.R]) -> promotion.Evidence:
    """Run a `kubetune-job` command line as the operator's Job runs it; the file it wrote (a `record`, read no
    further than its cap), as the gate reads it."""
    env = {**os.environ, **(local.access.env() if local.access else {})}
    # Its log to a file: a job's output (an interrupted import's traceback included) is not this command's.
    log_path = local.workdir / f"{argv[0]}-{Path(out).name}.log"
    with open(log_path, "ab") as log:
        done = subprocess.run([*JOB, *argv], check=False, stdout=log, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()
        local.console.print(f"  kubetune-job {argv[0]} failed (exit {done.returncode}): {tail[-1] if tail else ''} "
                            f"(log: {log_path})", markup=False, highlight=False, emoji=False, soft_wrap=True)
    try:
        return local.locate(join(out, name)).read_bytes(limit=record.max_bytes)
    except FileNotFoundError:
        return None
    except TooLarge as exc:
        return promotion.Unreadable(str(exc))
    except (OSError, storage.StorageError) as exc:
        return promotion.Unreadable(f"{join(out, name)}: {exc}")


def _evaluate(local: Local, base_url: str, p: api.PromotionSpec, out: str,
              datasets: tuple[str, ...]) -> promotion.Evidence:
    """`kubetune-job evaluate --endpoint` as the operator's gate Job runs it; its report."""
    options = EvaluateOptions(endpoint=base_url, model=local.serve.served_name(), data=datasets, output=out,
                              suite=tuple(suite_arg(s.name, s.limit) for s in p.suites), max_new_tokens=p.max_new_tokens)
    return _job_output(local, options.command_line(), out, REPORT_FILE, records.ReportSummary)


def _benchmark(local: Local, base_url: str, out: str) -> promotion.Evidence:
    """`kubetune-job bench` as the operator's benchmark Job runs it (spec.benchmark); its bench.json, for the
    gate's serving objectives."""
    bm = local.spec.benchmark
    options = BenchOptions(endpoint=base_url, model=local.serve.served_name(), concurrency=tuple(bm.concurrency),
                           requests=bm.requests, max_tokens=bm.max_tokens, output=out)
    return _job_output(local, options.command_line(), out, BENCH_FILE, records.BenchReport)


def reference_target(ref: str) -> source.Target:
    """A model named on the command line: a directory, an s3:// URI, bundled:NAME or a Hub id."""
    path = Path(ref).expanduser()
    if (ref.startswith((".", "/", "~")) or ref.endswith(".json")) and not path.is_dir():
        raise ServeError(f"--against {ref}: no such directory or file (a model directory, an s3:// URI, "
                         "bundled:NAME, or the report.json of the serving model's evaluation)")
    if path.is_dir() and not (path / "config.json").is_file():
        raise ServeError(f"--against {ref}: the directory holds no config.json (not a model directory)")
    if ref.startswith("s3://") or path.is_dir():
        return source.Target(ref, uri=str(Path(ref).expanduser()) if not ref.startswith("s3://") else ref)
    return source.Target(ref, hub=ref)


def gate(local: Local, against: str, port: int, console: Console, *,
         keep: bool = False) -> tuple[promotion.Verdict, source.Target, Any]:
    """Evaluate the serving model (`against`: a model, or the report.json of its evaluation on the same
    suites) and the candidate (the manifest's), one server after the other with the same vLLM settings,
    and apply the manifest's gate. Reports go to the store's serves/<name>/eval/<revision>/. With `keep`,
    the candidate's server is left running and returned (to serve from if promoted), else None."""
    candidate = local.target()
    p = local.spec.promotion
    suites = [s.name for s in p.suites]
    layout = ServeLayout.of(local.root, local.serve.metadata.namespace, local.serve.metadata.name)
    reports: dict[str, promotion.Evidence] = {}
    benches: dict[str, promotion.Evidence] = {}  # read only by a gate with serving objectives
    todo: list[tuple[str, source.Target]] = [("candidate", candidate)]
    if against.endswith(".json") and Path(against).is_file():
        reports["serving"] = read_file(Path(against))
        console.print(f"[bold]gate[/] the serving model's scores: {escape(against)}", soft_wrap=True)
    else:
        todo.insert(0, ("serving", reference_target(against)))
    # Both are served with the candidate's template: a base model's own knows no tools, and the run
    # evaluated the base model with the template it trains on.
    template = local.files(candidate).chat_template
    for label, target in todo:
        revision = source.revision(local.spec, target, local.serve.served_name(), "local")
        out = layout.eval(revision)
        console.print(f"[bold]gate[/] evaluating the {label} model {escape(target.source)} on {', '.join(suites)}",
                      soft_wrap=True)
        started = time.monotonic()
        srv = server(local.argv(target, port, template if label == "serving" else None), console).start()
        try:
            reports[label] = _evaluate(local, srv.base_url, p, out, candidate.datasets)
            if p.gate.objectives():
                # One server after the other on this machine: both benchmarks run alike.
                console.print(f"[bold]gate[/] benchmarking the {label} model (spec.benchmark) for the serving "
                              "objectives", soft_wrap=True)
                benches[label] = _benchmark(local, srv.base_url, layout.bench(revision))
        except BaseException:
            srv.stop()
            raise
        if not (keep and label == "candidate"):
            srv.stop()
            srv = None
        console.print(f"  done in {time.monotonic() - started:.0f} s: {join(out, REPORT_FILE)}", soft_wrap=True)
    try:
        verdict = promotion.gate(p, reports["candidate"], reports["serving"], benches.get("candidate"),
                                 benches.get("serving"))
        # Kept beside the candidate's report, for `kubetune report` on this serve's records.
        decided = source.revision(local.spec, candidate, local.serve.served_name(), "local")
        local.locate(layout.verdict(decided)).write_json({
            "decision": "Promoted" if verdict.passed else "Rejected", "message": verdict.message,
            "rows": [{"criterion": r.criterion, "threshold": r.threshold, "candidate": r.candidate,
                      "serving": r.serving, "passed": r.passed} for r in verdict.rows]})
    except BaseException:
        if srv is not None:
            srv.stop()  # it runs in a session of its own: nothing else would stop it
        raise
    return verdict, candidate, srv


def serve_forever(local: Local, target: source.Target, port: int, console: Console, *,
                  started_server: Any = None, template: str | None = None, previous: source.Target | None = None) -> int:
    """Serve `target` until Ctrl-C (or serve on from `started_server`, already running it), with the live probe when
    the manifest asks for it. With `previous` (what served before a promotion) and spec.promotion.watchSeconds, a
    failing probe round within the window raises RollBack."""
    try:
        return _serve(local, target, port, console, started_server, template, previous)
    finally:
        if started_server is not None:
            started_server.stop()  # also when something failed before it was entered


def _serve(local: Local, target: source.Target, port: int, console: Console, started_server: Any,
           template: str | None, previous: source.Target | None) -> int:
    argv = local.argv(target, port, template)
    console.print(f"[bold]kubetune serve[/] {local.serve.metadata.name}: {target.source}"
                  + (f" (digest {target.digest[:12]})" if target.digest else ""))
    console.print("  vllm " + " ".join(argv), soft_wrap=True, markup=False, highlight=False)
    started = time.monotonic()
    runtime = vllm.runtime_adapters(local.spec)
    with started_server or server(argv, console, fallback_model=argv[argv.index("--model") + 1],
                                  adapters=runtime) as srv:
        key_env = names.API_KEY if os.environ.get(names.API_KEY) else None
        probe = agent = None
        # From the line that says where it serves, a Ctrl-C or SIGTERM is a stop as asked, however soon it comes.
        try:
            console.print(f"\nserving at [bold]{srv.base_url}[/] as model {local.serve.served_name()!r} "
                          f"(ready in {time.monotonic() - started:.0f} s; metrics at {srv.base_url[:-3]}/metrics; "
                          "Ctrl-C or SIGTERM stops)\n", soft_wrap=True)
            console.print(curl(srv.base_url, local.serve.served_name(), api_key_env=key_env), markup=False,
                          highlight=False, soft_wrap=True)
            if local.spec.api_key_secret and not key_env:
                console.print("[yellow]note[/] spec.apiKeySecret names a Secret; on this machine the key is "
                              f"${names.API_KEY} (unset: no key is required)")
            if runtime and isinstance(srv, VLLMServer):  # the transformers fallback serves no adapter
                agent = AdapterAgent(JOB, local, target, srv.root_url, console)
            elif runtime:
                console.print("[yellow]note[/] spec.adapters need vLLM: the fallback server serves the base only")
            if local.spec.monitoring.probe.enabled:
                revision = source.revision(local.spec, target, local.serve.served_name(), "local")
                probe = LiveProbe(JOB, local.serve, local.root, srv.base_url, revision, console,
                                  local.workdir / "probe.log", local.locate)
            _watch(local, probe, previous, console)
            while srv.running:
                time.sleep(1.0)
        except KeyboardInterrupt as interrupt:  # SIGTERM too: asked to stop, serving ends as it should
            console.print(f"\nstopping the server ({signal_name(interrupt)})")
            return 0
        finally:
            if probe is not None:
                probe.stop()
            if agent is not None:
                agent.stop()
        raise srv.failure(f"the server stopped (exit {srv.returncode})")


def _watch(local: Local, probe: LiveProbe | None, previous: source.Target | None, console: Console) -> None:
    """After a promotion: each probe round judged as the operator judges it, until the window ends; RollBack on a
    failing round, or on none at all by the end (a watch that cannot see says no)."""
    seconds = local.spec.promotion.watch_seconds
    if not seconds or previous is None:
        return
    if probe is None:
        console.print("[yellow]note[/] spec.promotion.watchSeconds needs spec.monitoring.probe.enabled: no watch")
        return
    console.print(f"[bold]watch[/] revision {probe.revision} for {seconds} s: a failing probe round goes back to "
                  f"{escape(previous.source)}", soft_wrap=True)
    until = time.monotonic() + seconds
    while True:
        time.sleep(1.0)
        verdict = probe.verdict()
        over = time.monotonic() >= until
        if verdict.failure or (over and not verdict.seen):
            why = verdict.failure or f"no probe round within the {seconds} s window: the watch cannot vouch for it"
            console.print(f"[red]rolling back[/] revision {probe.revision}: {escape(why)}", soft_wrap=True)
            raise RollBack(why)
        if over:
            console.print(f"[bold]watch[/] passed: revision {probe.revision} keeps serving", soft_wrap=True)
            return


def run(manifest: str | Path, store: Path, port: int, console: Console, *, against: str | None = None,
        gate_only: bool = False) -> int:
    try:
        serve = load(manifest)
    except SpecError as exc:
        console.print(f"invalid manifest {manifest}: {exc}", markup=False, emoji=False, highlight=False,
                      soft_wrap=True)
        return 2
    # Before any work: the port is read by every server this command starts, one after the other.
    if not process.port_free(port):
        raise ServeError(f"port {port} on 127.0.0.1 is already in use (--port picks another)")
    local = Local(serve, store, console)
    local.reach()
    evaluated = None
    try:
        if against:
            verdict, target, evaluated = gate(local, against, port, console, keep=not gate_only)
            console.print()
            show(verdict, console)
            if not verdict.passed or gate_only:
                return exit_code(verdict)
            # Promoted: the server the candidate was evaluated on serves on, as a rollout would.
            started, evaluated = evaluated, None
            previous = None if against.endswith(".json") and Path(against).is_file() else reference_target(against)
            return serve_promoted(local, target, previous, port, console, started)
        return serve_forever(local, local.target(), port, console)
    finally:
        if evaluated is not None:
            evaluated.stop()


def serve_promoted(local: Local, target: source.Target, previous: source.Target | None, port: int, console: Console,
                   started: Any) -> int:
    """Serve the promoted `target` from the server it was evaluated on; when its watch rolls back, the previous model
    again, with the template the gate evaluated it with (the candidate's)."""
    try:
        return serve_forever(local, target, port, console, started_server=started, previous=previous)
    except RollBack:
        assert previous is not None  # only a watch with a previous model rolls back
        console.print(f"serving the previous model {escape(previous.source)} again", soft_wrap=True)
        return serve_forever(local, previous, port, console, template=local.files(target).chat_template)


def serve_run(run: ftr_api.FineTuneRun, store: Path, port: int, console: Console) -> int:
    """`kubetune run ... --serve`: serve the run just finished, as a ModelServe naming it would."""
    name = run.metadata.name
    # A ModelServe's name is a Service's, which starts with a letter; a run's may start with a digit. The
    # served model keeps the run's name either way.
    serve_name = name if name[0].isalpha() else f"serve-{name}"[:63].rstrip("-")
    manifest = api.ModelServe(metadata={"name": serve_name, "namespace": run.metadata.namespace},
                              spec=api.ModelServeSpec(model=api.ModelSource(fine_tune_run={"name": name}),
                                                      served_model_name=name, storage=run.spec.storage))
    local = Local(manifest, store, console)
    return serve_forever(local, local.target(), port, console)
