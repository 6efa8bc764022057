"""One local HTTP server subprocess: a free loopback port, start, wait for health, stop.

Both local servers (vLLM and `transformers serve`) run through `ServerProcess`. The server gets a
process group of its own, so stopping it also stops the workers it started (vLLM's engine core is a
child process), and a server that dies while starting is seen at once, with the cause read off its log.

A process group of its own also means a terminal's Ctrl-C does not reach the server: whoever started it
stops it, whatever interrupts them (an interrupt while starting or stopping included), and `stop_all` is
the last resort of a command on its way out.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, Any, NoReturn

# The line of a log that says why a Python program died: the exception's own, after its traceback.
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)\b:?(?: .*)?$")
# Servers started and not yet stopped, whoever holds them (`stop_all`).
_live: set[ServerProcess] = set()


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
    """The local server did not come up, or stopped: the message is one line naming the cause (and the
    log); `detail` holds the tail of the log, where there is one."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def cause(log: str, limit: int = 300) -> str:
    """What a server's log says it died of: its last exception line (with the indented line after it, where
    pydantic and others put the detail), else its last non-blank line; at most `limit` characters."""
    lines = [line.rstrip() for line in log.splitlines() if line.strip()]
    found = [i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)]
    if found:
        i = found[-1]
        line = lines[i]
        if i + 1 < len(lines) and lines[i + 1][:1].isspace() and not lines[i + 1].lstrip().startswith("File "):
            line = f"{line.rstrip(':')}: {lines[i + 1].strip()}"
    else:
        line = lines[-1].strip() if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def stop_all() -> None:
    """Stop every server this process started and has not stopped: what a command does last, so that no
    path out of it (an error, an interrupt, a bug) leaves one running. An interrupt meanwhile only makes
    a stop quicker (SIGKILL at once): the caller is on its way out already."""
    for server in list(_live):
        try:
            server.stop()
        except KeyboardInterrupt:
            pass


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
        _live.add(self)
        try:
            try:
                self._proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                              env=self.env, start_new_session=True)
            except OSError as exc:
                raise ServerError(f"{self.name} could not be started ({self.command[0]}): {exc}") from exc
            self._wait_healthy(began)
        except BaseException:
            # Ctrl-C or SIGTERM while it starts: it runs in a session of its own, nothing else stops it.
            self.stop()
            raise
        return self

    def _wait_healthy(self, began: float) -> None:
        assert self._proc is not None
        deadline = began + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._fail(f"{self.name} exited with {self._proc.returncode} while starting")
            if _answers_200(self.health_url):
                self.startup_s = time.monotonic() - began
                return
            time.sleep(0.5)
        self._fail(f"{self.name} not healthy after {self.startup_timeout:.0f} s")

    def _fail(self, why: str) -> NoReturn:
        raise self.failure(why)

    def failure(self, why: str) -> ServerError:
        """The server stopped: `why`, with the cause its log gives, as a ServerError (the log is kept, the
        message names it, and the server is stopped)."""
        tail = self.log_tail()
        self._own_log = False
        self.stop()
        said = cause(tail)
        return ServerError(f"{why}: {said} (log: {self.log_path})" if said else f"{why} (log: {self.log_path})",
                           tail)

    def wait(self) -> int:
        """Block until the server exits by itself; returns its exit status."""
        assert self._proc is not None, "not started"
        return self._proc.wait()

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM to the server's process group, SIGKILL to what is left after `grace` seconds, or at once
        when an interrupt (a second Ctrl-C, SIGTERM) cuts the wait short; the interrupt then goes on up.
        Once stopped, stopping again does nothing (the group id could by then be another's)."""
        proc = self._proc
        if proc is not None and not self._stopped:
            self._stopped = True
            try:
                if proc.poll() is None:
                    _signal_group(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=grace)
                # Workers outlive a leader that exited first; give them a moment to end on their own.
                deadline = time.monotonic() + 5
                while _group_alive(proc.pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
            except subprocess.TimeoutExpired:
                pass
            finally:
                _signal_group(proc.pid, signal.SIGKILL)
                _reap(proc)
        _live.discard(self)
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


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Wait for a leader sent SIGKILL (it cannot refuse: no interrupt is let cut this short, or it would
    stay a zombie holding its process group id)."""
    while True:
        try:
            proc.wait()
            return
        except KeyboardInterrupt:
            continue


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
