"""`kubetune-job adapters`: one replica's adapter agent. Every pass it reads the serve's adapter set, places
each adapter in a local directory (every file fetched and checked against its `_COMPLETE` marker, the marker
against the digest the set names), checks it against the server's limits, and loads, swaps and unloads through
vLLM's runtime LoRA endpoints until the server answers for exactly the set; then it writes what it reached.

One adapter that cannot be placed, checked or loaded is marked Failed with the reason and retried next pass;
it never stops the others nor the base. A set that cannot be read changes nothing on the server (an unreadable
set is not an empty one). A server that does not answer is waited for: a restarted vLLM gets the set again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import storage
from ..contract import adapters as contract
from ..contract.layout import COMPLETE_MARKER, COMPLETE_MARKER_MAX_BYTES, marker_digest
from ..contract.options import AdaptersOptions
from ..contract.records import FAILED, LOADED, AdapterSet, AdapterState, ReplicaAdapters, Wanted, read

log = logging.getLogger(__name__)
REPLY_MAX_BYTES = 4 * 2**20  # a model listing of hundreds of adapters is tens of KiB
MESSAGE_CHARS = 300  # the most of a server's message a state carries
PLACED = ".placed"  # written last in a placed adapter's directory


class Unreachable(RuntimeError):
    """The server did not answer (starting, restarting, gone): nothing can be loaded on it now."""


class Refused(RuntimeError):
    """The server answered a load or unload with an error; the message is its own, shortened."""


class NotPlaced(RuntimeError):
    """An adapter's files could not be placed locally as the set names them."""


class RuntimeLora:
    """One vLLM server's runtime LoRA endpoints (`--enable-lora`, with VLLM_ALLOW_RUNTIME_LORA_UPDATING set)."""

    def __init__(self, root_url: str, *, api_key: str | None = None, timeout: float = 300.0) -> None:
        self.root_url = root_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.root_url + path, data=data, headers=headers,
                                         method="POST" if body is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                text = reply.read(REPLY_MAX_BYTES).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            raise Refused(_message(exc.read(REPLY_MAX_BYTES).decode("utf-8", "replace"), exc.code)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise Unreachable(f"{self.root_url} did not answer: {getattr(exc, 'reason', exc)}") from None
        try:
            return json.loads(text)
        except ValueError:
            return text

    def served(self, base: str) -> dict[str, str]:
        """Adapter name -> the directory the server loaded it from."""
        try:
            return contract.served(self._call(contract.MODELS_PATH), base)
        except Refused as exc:
            raise Unreachable(f"{self.root_url} did not list its models: {exc}") from None

    def load(self, name: str, path: str, *, in_place: bool = False) -> None:
        self._call(contract.LOAD_PATH, {"lora_name": name, "lora_path": path, "load_inplace": in_place})

    def unload(self, name: str) -> None:
        self._call(contract.UNLOAD_PATH, {"lora_name": name})


def _message(body: str, status: int) -> str:
    """vLLM's error message (`{"error": {"message": ...}}`) or the body, on one short line."""
    try:
        parsed = json.loads(body)
        text = parsed["error"]["message"] if isinstance(parsed, dict) else body
    except (ValueError, KeyError, TypeError):
        text = body
    one_line = " ".join(str(text).split())
    return f"HTTP {status}: {one_line[:MESSAGE_CHARS]}"


def place(wanted: Wanted, cache: Path) -> Path:
    """The adapter's local directory under `cache`, fetched and checked once per digest: every file against
    the marker, the marker against the set's digest (before and after the copy, so a directory replaced while
    it was copied is not taken for either version)."""
    dest = cache / f"{wanted.name}-{wanted.digest[:16]}"
    if (dest / PLACED).is_file():
        return dest
    where = storage.location(wanted.uri)

    def checked_marker() -> None:
        try:
            marker = where.child(COMPLETE_MARKER).read_bytes(limit=COMPLETE_MARKER_MAX_BYTES)
        except FileNotFoundError:
            raise NotPlaced(f"{wanted.uri} is not a complete adapter directory (no {COMPLETE_MARKER})") from None
        if marker_digest(marker) != wanted.digest:
            raise NotPlaced(f"{wanted.uri}: its files are not the ones the set names (the {COMPLETE_MARKER} digest "
                            "differs); it changed after the set was written")

    try:
        checked_marker()
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=cache))
        try:
            where.download_dir(tmp, copy=True)
            checked_marker()
            (tmp / PLACED).write_text(wanted.digest)  # the copy is whole and checked
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except storage.StorageError as exc:
        raise NotPlaced(str(exc)) from None
    except OSError as exc:
        raise NotPlaced(f"{wanted.uri}: {exc}") from None
    return dest


def _config_problem(directory: Path, max_rank: int) -> str | None:
    config = directory / contract.CONFIG_FILE
    if not config.is_file():
        return f"no {contract.CONFIG_FILE}: not a LoRA adapter directory"
    with config.open("rb") as fh:
        data = fh.read(contract.CONFIG_MAX_BYTES + 1)
    if len(data) > contract.CONFIG_MAX_BYTES:
        return f"{contract.CONFIG_FILE} is over {contract.CONFIG_MAX_BYTES} bytes"
    return contract.config_problem(data, max_rank)


def sync(server: RuntimeLora, wanted: AdapterSet, cache: Path, replica: str) -> ReplicaAdapters:
    """One pass: the server brought as close to the set as it can be; each adapter's state, with the reason of
    every failure. Unreachable when the server does not list its models (nothing was asked of it)."""
    states: dict[str, AdapterState] = {}
    placed: dict[str, str] = {}

    def failed(w: Wanted, why: str) -> None:
        states[w.name] = AdapterState(name=w.name, digest=w.digest, state=FAILED, reason=why)

    for w in wanted.adapters:
        try:
            directory = place(w, cache)
        except NotPlaced as exc:
            failed(w, str(exc))
            continue
        problem = _config_problem(directory, wanted.max_rank)
        if problem:
            failed(w, problem)
            continue
        placed[w.name] = str(directory)
    loaded = server.served(wanted.base)
    steps = contract.plan(wanted.adapters, placed, loaded)
    removed = []
    for name in steps.unload:
        try:
            server.unload(name)
            removed.append(name)
        except Refused as exc:
            log.warning("could not unload adapter %s: %s", name, exc)
    for w, in_place in [(w, False) for w in steps.load] + [(w, True) for w in steps.replace]:
        try:
            server.load(w.name, placed[w.name], in_place=in_place)
            states[w.name] = AdapterState(name=w.name, digest=w.digest, state=LOADED)
        except Refused as exc:
            failed(w, f"the server refused it: {exc}")
    for w in wanted.adapters:
        if w.name not in states and w.name in placed:
            states[w.name] = AdapterState(name=w.name, digest=w.digest, state=LOADED)
    # What no adapter uses any more leaves the replica's disk (a version still loaded because its successor
    # could not be placed stays).
    keep = set(placed.values()) | {loaded[n] for n in loaded if n not in placed and n not in removed}
    for entry in cache.iterdir() if cache.is_dir() else ():
        if entry.is_dir() and not entry.name.startswith(".") and str(entry) not in keep:
            shutil.rmtree(entry, ignore_errors=True)
    return ReplicaAdapters(created=datetime.now(UTC).isoformat(timespec="seconds"), replica=replica,
                           adapters=[states[w.name] for w in wanted.adapters], removed=removed)


def read_set(uri: str) -> AdapterSet:
    """The set at `uri`; ValueError saying why when there is none or it is not a set."""
    try:
        data = storage.location(uri).read_bytes(limit=AdapterSet.max_bytes)
    except FileNotFoundError:
        raise ValueError(f"no adapter set at {uri}") from None
    except storage.TooLarge:
        raise ValueError(f"{uri} is over {AdapterSet.max_bytes} bytes: not an adapter set") from None
    found = read(AdapterSet, data)
    if found is None:
        raise ValueError(f"{uri} is not an adapter set")
    return found


def line(state: ReplicaAdapters) -> str:
    """One pass as a log line: `adapters: 2/3 loaded; failed: big (rank 32 exceeds ...)`."""
    ok = [a.name for a in state.adapters if a.state == LOADED]
    bad = [f"{a.name} ({a.reason})" for a in state.adapters if a.state != LOADED]
    text = f"adapters on {state.replica}: {len(ok)}/{len(state.adapters)} loaded"
    if ok:
        text += f" ({', '.join(ok)})"
    if bad:
        text += f"; failed: {'; '.join(bad)}"
    if state.removed:
        text += f"; unloaded: {', '.join(state.removed)}"
    return text


def loop(options: AdaptersOptions, stop: threading.Event, report: Callable[[ReplicaAdapters], None]) -> int:
    server = RuntimeLora(options.endpoint, api_key=os.environ.get("KUBETUNE_API_KEY") or None)
    passes = 0
    while not stop.is_set():
        began = time.monotonic()
        try:
            state = sync(server, read_set(options.set), Path(options.cache), options.replica or socket.gethostname())
            report(state)
            passes += 1
        except (ValueError, Unreachable) as exc:
            log.warning("adapters: %s (nothing changed; next pass in %.0f s)", exc, options.interval_seconds)
        if options.passes and passes >= options.passes:
            break
        stop.wait(max(0.0, options.interval_seconds - (time.monotonic() - began)))
    return 0


def run(options: AdaptersOptions) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    out = storage.location(options.output) if options.output else None
    last = {"line": ""}

    def report(state: ReplicaAdapters) -> None:
        text = line(state)
        if text != last["line"]:  # a pass that changed nothing says nothing
            print(text, flush=True)
            last["line"] = text
        if out is not None:
            try:
                out.child(f"{state.replica}.json").write_json(state.dump())
            except storage.StorageError as exc:
                log.warning("adapters: could not write the replica's state: %s", exc)

    return loop(options, stop, report)
