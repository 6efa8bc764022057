"""The process table, as the lifecycle tests read it: what a command started, and what of it is left.

A process counts as gone once it has exited (a zombie waiting for its parent to reap it holds nothing but
its pid); psutil's `is_running` compares creation times, so a pid reused by another process is not taken
for the one recorded.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import psutil


def tree(pid: int) -> list[psutil.Process]:
    """`pid` and every process under it, whatever session or group they moved to."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def wait_for(pid: int, proc: subprocess.Popen, found: Callable[[list[psutil.Process]], bool],
             what: str, timeout: float = 900.0) -> list[psutil.Process]:
    """The tree under `pid` once `found(tree)` holds; fails if `proc` ends first or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs = tree(pid)
        if procs and found(procs):
            return procs
        if proc.poll() is not None:
            raise AssertionError(f"the command ended (exit {proc.returncode}) before {what}")
        time.sleep(0.2)
    raise AssertionError(f"no {what} after {timeout:.0f} s")


def left(procs: list[psutil.Process]) -> list[str]:
    """The processes of `procs` still running (their pid and command line)."""
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid}: {cmdline(p)[:200]}")
        except psutil.NoSuchProcess:
            pass
    return out


def kill(procs: list[psutil.Process]) -> None:
    """Clean up after a failed test: SIGKILL to whatever of `procs` is still running."""
    for p in procs:
        try:
            if p.is_running():
                p.kill()
        except psutil.NoSuchProcess:
            pass
