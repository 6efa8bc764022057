"""ServerProcess: the server answering on its port is the one it started, never another.

A stand-in is not needed here: `python -m http.server` is a real HTTP server subprocess, and what is
under test is the process handling (port, health, start, stop), the same for vLLM and `transformers serve`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable

import psutil
import pytest

from kubetune_jobs.serving.process import ServerError, ServerProcess, free_port, port_free, stop_all
from support.process_tree import kill


def http_server(port: int, directory: str) -> ServerProcess:
    return ServerProcess([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                          "--directory", directory], port=port, name="http.server", health_path="/")


def test_a_port_someone_else_listens_on_is_refused(tmp_path) -> None:
    port = free_port()
    with http_server(port, str(tmp_path)) as first:
        assert urllib.request.urlopen(first.health_url, timeout=5).status == 200
        # The first server answers health on that port: a second must not take it for itself.
        with pytest.raises(ServerError, match=f"port {port} on 127.0.0.1 is already in use"):
            http_server(port, str(tmp_path)).start()
    assert not first.running


def test_entering_a_started_server_does_not_start_another(tmp_path) -> None:
    port = free_port()
    server = http_server(port, str(tmp_path)).start()
    pid = server._proc.pid
    with server as same:
        assert same is server and server._proc.pid == pid and server.running
        with pytest.raises(ServerError, match="already running"):
            server.start()
    assert not server.running and server.returncode is not None
    server.stop()  # a second stop does nothing: no signal to a process group id another may hold by now
    # Stopped means the port is free again: the next server on it starts.
    with http_server(port, str(tmp_path)) as again:
        assert again.running


def interrupt_when(ready: Callable[[], bool]) -> threading.Thread:
    """Ctrl-C to this process (SIGINT: KeyboardInterrupt where the main thread is) once `ready()` holds."""
    def wait_then_interrupt() -> None:
        deadline = time.monotonic() + 120
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=wait_then_interrupt, daemon=True)
    thread.start()
    return thread


def test_an_interrupt_while_starting_stops_the_server(tmp_path) -> None:
    """The server runs in a session of its own, out of a terminal's Ctrl-C: start() stops it itself."""
    port = free_port()
    # A page http.server does not have: it answers 404, so the start waits for health until interrupted.
    server = ServerProcess([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                            str(tmp_path)], port=port, name="http.server", health_path="/no-such-page")
    started: list[psutil.Process] = []

    def listening() -> bool:
        started[:] = [p for p in psutil.Process().children() if "http.server" in " ".join(p.cmdline())]
        return bool(started) and not port_free(port)

    thread = interrupt_when(listening)
    try:
        with pytest.raises(KeyboardInterrupt):
            server.start()
        thread.join()
        assert started and not server.running
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in started)
    finally:
        kill(started)


STUBBORN = """
import http.server, pathlib, signal, sys
marker = pathlib.Path(sys.argv[2])
signal.signal(signal.SIGTERM, lambda *_: marker.write_text("asked to stop, staying"))
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def test_an_interrupt_while_stopping_kills_the_server_at_once(tmp_path) -> None:
    """A server that ignores SIGTERM would hold stop() for its whole grace; a second Ctrl-C cuts it short."""
    port, marker = free_port(), tmp_path / "sigterm"
    server = ServerProcess([sys.executable, "-c", STUBBORN, str(port), str(marker)], port=port, name="stubborn",
                           health_path="/").start()
    leader = psutil.Process(server._proc.pid)
    thread = interrupt_when(marker.exists)
    try:
        with pytest.raises(KeyboardInterrupt):
            server.stop(grace=600)
        thread.join()
        assert not server.running and not leader.is_running()
    finally:
        kill([leader])


def test_stop_all_stops_what_no_one_stopped(tmp_path) -> None:
    port = free_port()
    server = http_server(port, str(tmp_path)).start()
    try:
        stop_all()
        assert not server.running and port_free(port)
    finally:
        server.stop()
