"""ServerProcess: the server answering on its port is the one it started, never another.

A stand-in is not needed here: `python -m http.server` is a real HTTP server subprocess, and what is
under test is the process handling (port, health, start, stop), the same for vLLM and `transformers serve`.
"""

from __future__ import annotations

import sys
import urllib.request

import pytest

from kubetune_jobs.serving.process import ServerError, ServerProcess, free_port


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
