"""`kubetune serve`'s spec.adapters: each adapter resolved as the operator resolves it (its run in the local
store, its completeness marker, the base it was trained on), the set written as the operator writes it, and the
agent every replica runs beside vLLM (`kubetune-job adapters`) keeping this machine's server on it, its lines on
the console."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from typing import Any

from rich.console import Console
from rich.markup import escape

from kubetune_jobs.contract.layout import ADAPTER_SET_FILE, COMPLETE_MARKER, COMPLETE_MARKER_MAX_BYTES, join
from kubetune_jobs.contract.locations import TooLarge
from kubetune_jobs.contract.options import AdaptersOptions
from kubetune_operator.modelserve import adapters, source

INTERVAL_SECONDS = 5.0  # one machine: a change shows within seconds (the operator's agents: 15 s)
REPLICA = "local"


def resolve(local: Any, base: source.Target) -> list[adapters.Resolution]:
    """spec.adapters as the operator resolves them, from this machine's store."""
    out: list[adapters.Resolution] = []
    for i, a in enumerate(local.spec.adapters):
        run = local.run_object(a.fine_tune_run.name, f"spec.adapters[{i}].fineTuneRun.name") if a.fine_tune_run \
            else None
        found = adapters.locate(local.spec, i, run, base)
        if isinstance(found, adapters.Located):
            try:
                marker = local.locate(join(found.uri, COMPLETE_MARKER)).read_bytes(limit=COMPLETE_MARKER_MAX_BYTES)
                found = adapters.with_marker(found, marker)
            except FileNotFoundError:
                found = adapters.with_marker(found, None)
            except TooLarge as exc:
                found = adapters.with_marker(found, None, str(exc))
        out.append(found)
    return out


class AdapterAgent:
    """The set for `base`, and `kubetune-job adapters` keeping the server at `root_url` on it until `stop()`."""

    def __init__(self, job: list[str], local: Any, base: source.Target, root_url: str, console: Console) -> None:
        self.console = console
        found = resolve(local, base)
        for a, r in zip(local.spec.adapters, found, strict=True):
            if not isinstance(r, adapters.Located):
                console.print(f"  [red]adapter[/] {a.name}: {escape(r.message)}", soft_wrap=True)
        the_set = adapters.adapter_set(local.spec, local.serve.served_name(), found, [])
        path = local.workdir / ADAPTER_SET_FILE
        path.write_text(json.dumps(the_set.dump(), indent=1))
        self.names = [w.name for w in the_set.adapters]
        options = AdaptersOptions(endpoint=root_url, set=str(path), cache=str(local.workdir / "adapters"),
                                  output=str(local.workdir / "adapter-states"), replica=REPLICA,
                                  interval_seconds=INTERVAL_SECONDS)
        env = {**os.environ, **(local.access.env() if local.access else {})}
        self._log = open(local.workdir / "adapters.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*job, *options.command_line()], stdout=subprocess.PIPE, stderr=self._log,
                                     text=True, start_new_session=True, env=env)
        self.thread = threading.Thread(target=self._relay, daemon=True)
        self.thread.start()
        console.print(f"[bold]adapters[/] {', '.join(self.names) or 'none'} on the base model, each under its own "
                      f"model name (log: {local.workdir / 'adapters.log'})", soft_wrap=True)

    def _relay(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.console.print(f"  [bold]adapters[/] {escape(line.strip())}", soft_wrap=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(5)
        self._log.close()
