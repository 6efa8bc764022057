"""The quickstart, reduced for the suite's end-to-end runs, and `kubetune` started as a user starts it.

Two modules run it end to end, each on a worker of its own: test_local_run.py interrupts and resumes a
run that only has to go through every step, test_local_run_gate.py trains one that has to learn and serves
its models through the promotion gate.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "manifests" / "examples" / "quickstart.yaml"


def reduced_quickstart(dest: Path, name: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    """The quickstart under another name, changed by `edit(spec)`, everything else as shipped."""
    doc = yaml.safe_load(QUICKSTART.read_text())
    doc["metadata"]["name"] = name
    edit(doc["spec"])
    path = dest / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def kubetune(*args: str, env: dict | None = None) -> subprocess.Popen:
    # A wide terminal, so rich does not wrap the messages the tests look for.
    env = {**(env or os.environ), "COLUMNS": "400", "PYTHONUNBUFFERED": "1"}
    # A shell running this suite in the background hands its children SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler; restore the default so the interrupt below is Ctrl-C's.
    # Its own session, so a Ctrl-C can go to its whole process group as a terminal's does.
    return subprocess.Popen([sys.executable, "-m", "kubetune_local.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
