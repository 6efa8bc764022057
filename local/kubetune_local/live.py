"""`kubetune serve`'s live probe and watch: the job the operator's probe Deployment runs (`kubetune-job probe`),
against this machine's server, with its health line on the console; after a promotion, the operator's own verdict on
each round (`modelserve.watch`) decides whether to go back to the previous model."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from kubetune_jobs.contract.layout import ServeLayout
from kubetune_jobs.contract.locations import TooLarge
from kubetune_jobs.contract.options import ProbeOptions
from kubetune_jobs.contract.records import ProbeReport
from kubetune_jobs.contract.suites import suite_arg
from kubetune_jobs.storage import StorageError
from kubetune_operator.modelserve import api, promotion, watch


class RollBack(Exception):
    """The watched model failed its probe: serve the previous one again."""


class LiveProbe:
    """`kubetune-job probe` on an interval against `base_url` until `stop()`; its rounds printed as they end."""

    def __init__(self, job: list[str], serve: api.ModelServe, root: str, base_url: str, revision: str,
                 console: Console, log: Path, locate) -> None:
        pr = serve.spec.monitoring.probe
        self.spec, self.revision, self.console, self.locate = pr, revision, console, locate
        layout = ServeLayout.of(root, serve.metadata.namespace, serve.metadata.name)
        self.file = layout.probe_file(revision)
        options = ProbeOptions(endpoint=base_url, model=serve.served_name(),
                               suite=tuple(suite_arg(s.name, s.limit) for s in pr.suites), data=pr.data,
                               interval_seconds=float(pr.interval_seconds), max_new_tokens=pr.max_new_tokens,
                               output=layout.probe(revision), serve_name=serve.metadata.name, revision=revision,
                               namespace=serve.metadata.namespace)
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*job, *options.command_line()], stdout=subprocess.PIPE, stderr=self._log,
                                     text=True, start_new_session=True)
        self.thread = threading.Thread(target=self._relay, daemon=True)
        self.thread.start()
        console.print(f"[bold]probe[/] every {pr.interval_seconds} s: {', '.join(options.suite) or ''}"
                      f"{' + ' + escape(pr.data) if pr.data else ''} (log: {log})", soft_wrap=True)

    def _relay(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            text = line.strip().split(": ", 1)[-1]
            self.console.print(f"  [bold]probe[/] revision {self.revision}: {escape(text)}", soft_wrap=True)

    def verdict(self) -> watch.ProbeVerdict:
        """The operator's verdict on the last round written (NOT_YET before the first)."""
        try:
            data: promotion.Evidence = self.locate(self.file).read_bytes(limit=ProbeReport.max_bytes)
        except FileNotFoundError:
            data = None
        except TooLarge as exc:
            data = promotion.Unreadable(str(exc))
        except (OSError, StorageError) as exc:
            data = promotion.Unreadable(f"{self.file}: {exc}")
        return watch.read(self.spec, self.revision, data)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: it ends after the round in flight
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(5)
        self._log.close()
