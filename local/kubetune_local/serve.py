"""`kubetune serve MANIFEST`: the same ModelServe on one machine. Real vLLM (its own virtualenv, `make
vllm-env`) serves the model from the local store with the very argv the Deployment's container gets
(`vllm.argv`); it prints the endpoint and a ready-to-paste request with `tools`, and stops cleanly on
Ctrl-C. Where vLLM cannot run, `transformers serve` is a labelled fallback (the same API, another server).

With `--against MODEL` it runs the promotion gate first, one server after the other: the manifest's model
is the candidate, MODEL the one serving (or the report.json of its evaluation on the same suites, as the
operator reuses recorded scores); both are evaluated on `spec.promotion.suites` through their endpoints,
the gate decides, and the winner is served (`--gate-only`: decide and exit, 0 promoted, 3 rejected).
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
from kubetune_jobs.contract.layout import COMPLETE_MARKER, REPORT_FILE, RunLayout, ServeLayout, join
from kubetune_jobs.contract.options import EvaluateOptions
from kubetune_jobs.contract.store import resolve
from kubetune_jobs.contract.suites import suite_arg
from kubetune_jobs.serving.example import curl
from kubetune_operator.apitypes import SpecError
from kubetune_operator.finetunerun import api as ftr_api
from kubetune_operator.modelserve import api, promotion, source, vllm

JOB = [sys.executable, "-m", "kubetune_jobs.cli"]
EXIT_REJECTED = 3


class ServeError(RuntimeError):
    """The manifest names nothing this machine can serve; the message says why and what to run."""


def load(path: str | Path) -> api.ModelServe:
    """Read and validate a ModelServe manifest as the operator does (every document of the file, as
    `kubetune validate` reads it)."""
    return api.load_manifest(path)


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
        self.workdir = Path(tempfile.mkdtemp(prefix="kubetune-serve-"))

    def locate(self, uri: str) -> storage.Location:
        return storage.location(uri, self.access)

    def run_object(self) -> dict[str, Any] | None:
        """The FineTuneRun `kubetune run` finished into this store (its summary), or None."""
        ref = self.spec.model.fine_tune_run
        assert ref is not None
        layout = RunLayout.of(self.root, self.serve.metadata.namespace, ref.name)
        try:
            return json.loads(self.locate(layout.summary).read_bytes())
        except FileNotFoundError:
            return None

    def target(self) -> source.Target:
        run = self.run_object() if self.spec.model.fine_tune_run else None
        if self.spec.model.fine_tune_run and run is None:
            ref = self.spec.model.fine_tune_run.name
            raise ServeError(f"spec.model.fineTuneRun.name: no finished FineTuneRun {ref!r} in {self.root} "
                             f"(run `kubetune run <its manifest>` first, or pass --store)")
        resolved = source.resolve(self.spec, run)
        if isinstance(resolved, tuple):
            target, where = resolved
            markers = {}
            for uri in (where.model_uri, where.adapter_uri):
                if uri:
                    try:
                        markers[uri] = self.locate(join(uri, COMPLETE_MARKER)).read_bytes()
                    except FileNotFoundError:
                        markers[uri] = None
            resolved = source.with_markers(target, where, markers)
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


def server(argv: list[str], console: Console, *, fallback_model: str | None = None) -> Any:
    """A server to start (`with` it): real vLLM, else (labelled) `transformers serve` on the same model."""
    from kubetune_jobs.serving import process, vllm_server

    env = dict(os.environ)
    key = os.environ.get(names.API_KEY)
    if key:
        env[vllm.API_KEY_ENV] = key
    try:
        return vllm_server.VLLMServer(argv, env=env)
    except process.ServerError as exc:
        if fallback_model is None or "not installed" not in str(exc):
            raise
        from kubetune_jobs.serving import template, transformers_server

        console.print(f"[yellow]fallback[/] {exc}\n  serving with `transformers serve` instead: the same "
                      "OpenAI-compatible API, not vLLM (no continuous batching, no vLLM metrics)")
        servable = template.servable_copy(fallback_model, Path(tempfile.mkdtemp(prefix="kubetune-tf-")) / "model")
        port = int(argv[argv.index("--port") + 1])
        return transformers_server.LocalServer(servable, port=port)


def _evaluate(local: Local, base_url: str, p: api.PromotionSpec, out: str,
              datasets: tuple[str, ...]) -> records.ReportSummary | None:
    """`kubetune-job evaluate --endpoint` as the operator's gate Job runs it; its report."""
    options = EvaluateOptions(endpoint=base_url, model=local.serve.served_name(), data=datasets, output=out,
                              suite=tuple(suite_arg(s.name, s.limit) for s in p.suites), max_new_tokens=p.max_new_tokens)
    env = {**os.environ, **(local.access.env() if local.access else {})}
    subprocess.run([*JOB, *options.command_line()], check=False, stdout=subprocess.DEVNULL, env=env)
    try:
        return records.read(records.ReportSummary, local.locate(join(out, REPORT_FILE)).read_bytes())
    except FileNotFoundError:
        return None


def reference_target(ref: str) -> source.Target:
    """A model named on the command line: a directory, an s3:// URI, bundled:NAME or a Hub id."""
    if ref.startswith("s3://") or Path(ref).expanduser().is_dir():
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
    reports: dict[str, records.ReportSummary | None] = {}
    todo: list[tuple[str, source.Target]] = [("candidate", candidate)]
    if against.endswith(".json") and Path(against).is_file():
        reports["serving"] = records.read(records.ReportSummary, Path(against).read_bytes())
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
        except BaseException:
            srv.stop()
            raise
        if not (keep and label == "candidate"):
            srv.stop()
            srv = None
        console.print(f"  done in {time.monotonic() - started:.0f} s: {join(out, REPORT_FILE)}", soft_wrap=True)
    try:
        verdict = promotion.gate(p, reports["candidate"], promotion.scores(reports["serving"], suites))
    except BaseException:
        if srv is not None:
            srv.stop()  # it runs in a session of its own: nothing else would stop it
        raise
    return verdict, candidate, srv


def serve_forever(local: Local, target: source.Target, port: int, console: Console, *,
                  started_server: Any = None) -> int:
    """Serve `target` until Ctrl-C (or serve on from `started_server`, already running it)."""
    try:
        return _serve(local, target, port, console, started_server)
    finally:
        if started_server is not None:
            started_server.stop()  # also when something failed before it was entered


def _serve(local: Local, target: source.Target, port: int, console: Console, started_server: Any) -> int:
    argv = local.argv(target, port)
    console.print(f"[bold]kubetune serve[/] {local.serve.metadata.name}: {target.source}"
                  + (f" (digest {target.digest[:12]})" if target.digest else ""))
    console.print("  vllm " + " ".join(argv), soft_wrap=True, markup=False, highlight=False)
    started = time.monotonic()
    with started_server or server(argv, console, fallback_model=argv[argv.index("--model") + 1]) as srv:
        key_env = names.API_KEY if os.environ.get(names.API_KEY) else None
        console.print(f"\nserving at [bold]{srv.base_url}[/] as model {local.serve.served_name()!r} "
                      f"(ready in {time.monotonic() - started:.0f} s; metrics at {srv.base_url[:-3]}/metrics; "
                      "Ctrl-C stops)\n", soft_wrap=True)
        console.print(curl(srv.base_url, local.serve.served_name(), api_key_env=key_env), markup=False,
                      highlight=False, soft_wrap=True)
        if local.spec.api_key_secret and not key_env:
            console.print("[yellow]note[/] spec.apiKeySecret names a Secret; on this machine the key is "
                          f"${names.API_KEY} (unset: no key is required)")
        try:
            while srv.running:
                time.sleep(1.0)
        except KeyboardInterrupt:
            console.print("\nstopping the server")
            return 0
        console.print(f"[red]✗[/] the server stopped (exit {srv.returncode}):\n{srv.log_tail()}")
        return 1


def run(manifest: str | Path, store: Path, port: int, console: Console, *, against: str | None = None,
        gate_only: bool = False) -> int:
    try:
        serve = load(manifest)
    except SpecError as exc:
        console.print(f"invalid manifest {manifest}: {exc}", markup=False, emoji=False, highlight=False,
                      soft_wrap=True)
        return 2
    local = Local(serve, store, console)
    try:
        if against:
            verdict, target, evaluated = gate(local, against, port, console, keep=not gate_only)
            word = "[green]promoted[/]" if verdict.passed else "[red]rejected[/]"
            console.print(f"\ngate: {word}: {verdict.message}", soft_wrap=True)
            if not verdict.passed or gate_only:
                if evaluated is not None:
                    evaluated.stop()
                return 0 if verdict.passed else EXIT_REJECTED
            # Promoted: the server the candidate was evaluated on serves on, as a rollout would.
            return serve_forever(local, target, port, console, started_server=evaluated)
        return serve_forever(local, local.target(), port, console)
    except ServeError as exc:
        console.print(f"[red]✗[/] {exc}", markup=False)
        return 1


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
    try:
        return serve_forever(local, local.target(), port, console)
    except ServeError as exc:
        console.print(f"[red]✗[/] {exc}", markup=False)
        return 1
