"""One local HTTP server subprocess: a free loopback port, start, wait for health, stop.

Both local servers (vLLM and `transformers serve`) run through `ServerProcess`. The server gets a
process group of its own, so stopping it also stops the workers it started (vLLM's engine core is a
child process), and a server that dies while starting is seen at once, with the tail of its log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, Any, NoReturn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_free(port: int) -> bool:
    """No one listens on 127.0.0.1:port (connections of a stopped server lingering in TIME_WAIT do not
    count: the servers themselves bind with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class ServerError(RuntimeError):
    """The local server did not come up, or stopped; the message carries the tail of its log."""


class ServerProcess:
    """`command` as a server answering HTTP on `127.0.0.1:port`, for as long as the `with` block lasts
    (a server already started stays the same one: entering the block does not start a second).

    Ready when `health_path` answers 200. The combined stdout/stderr goes to `log_path` (a temporary
    file by default, removed after a clean stop, kept and named in the error when startup fails).
    """

    def __init__(self, command: list[str], *, port: int, name: str, env: dict[str, str] | None = None,
                 health_path: str = "/health", startup_timeout: float = 300.0,
                 log_path: str | Path | None = None) -> None:
        self.command, self.port, self.name, self.env = list(command), port, name, env
        self.root_url = f"http://127.0.0.1:{port}"
        self.health_url = self.root_url + health_path
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path else None
        self._own_log = log_path is None
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None  # seconds from start to healthy
        self._stopped = False

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        if self._log is not None and not self._log.closed:
            self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> ServerProcess:
        if self.running:
            raise ServerError(f"{self.name} is already running on port {self.port}")
        # Health is read off the port: a server already listening there would pass for this one.
        if not port_free(self.port):
            raise ServerError(f"{self.name} cannot start: port {self.port} on 127.0.0.1 is already in use")
        if self._own_log:
            fd, path = tempfile.mkstemp(prefix=f"{self.name.replace(' ', '-')}-", suffix=".log")
            os.close(fd)
            self.log_path = Path(path)
        assert self.log_path is not None
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        began = time.monotonic()
        self._stopped = False
        try:
            self._proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                          env=self.env, start_new_session=True)
        except OSError as exc:
            self._log.close()
            raise ServerError(f"{self.name} could not be started ({self.command[0]}): {exc}") from exc
        deadline = began + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._fail(f"{self.name} exited with {self._proc.returncode} while starting")
            if _answers_200(self.health_url):
                self.startup_s = time.monotonic() - began
                return self
            time.sleep(0.5)
        self._fail(f"{self.name} not healthy after {self.startup_timeout:.0f} s")

    def _fail(self, why: str) -> NoReturn:
        tail = self.log_tail()
        self._own_log = False  # keep the log the message points to
        self.stop()
        raise ServerError(f"{why} (log: {self.log_path}):\n{tail}")

    def wait(self) -> int:
        """Block until the server exits by itself; returns its exit status."""
        assert self._proc is not None, "not started"
        return self._proc.wait()

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM to the server's process group, SIGKILL to what is left after `grace` seconds. Once
        stopped, stopping again does nothing (the group id could by then be another's)."""
        proc = self._proc
        if proc is not None and not self._stopped:
            self._stopped = True
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    _signal_group(proc.pid, signal.SIGKILL)
                    proc.wait()
            # Workers outlive a leader that exited first; give them a moment to end on their own.
            deadline = time.monotonic() + 5
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            _signal_group(proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
        if self._own_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> ServerProcess:
        return self if self.running else self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
