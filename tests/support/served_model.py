"""The model the vLLM tests serve and the api_server flags they serve it with.

The servable copy of the bundled SmolLM2 lives at a fixed path under the kubetune cache, named by a
hash of our template: vLLM keys its compile cache by the model's path, so a new temporary directory
every session would make every session's first start a cold one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from kubetune_jobs import chat_template
from kubetune_jobs.models import cache_dir, resolve
from kubetune_jobs.serving.template import CHAT_TEMPLATE_FILE, servable_copy

SERVED_NAME = "smollm2"
BUNDLED = "bundled:smollm2-135m"
COMPLETE = ".servable-complete"


def servable_smollm2() -> Path:
    """The bundled SmolLM2-135M with our template, built once per template (safe when sessions race)."""
    digest = hashlib.sha256(chat_template.template().encode()).hexdigest()[:12]
    dest = cache_dir() / "servable" / f"smollm2-135m-{digest}"
    if (dest / COMPLETE).exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    servable_copy(resolve(BUNDLED), tmp)
    (tmp / COMPLETE).touch()
    try:
        os.rename(tmp, dest)
    except OSError:  # another session finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def smollm2_argv(model_dir: Path, *, eager: bool = True) -> list[str]:
    """vLLM api_server flags for serving `model_dir` as production does: our template and the hermes
    tool parser. Eager by default: on this CPU a compiled start takes minutes for little the tests use
    (figures in BENCHMARKS.md)."""
    argv = ["--model", str(model_dir), "--served-model-name", SERVED_NAME, "--dtype", "bfloat16",
            "--max-model-len", "4096", "--seed", "0",
            "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
            "--chat-template", str(model_dir / CHAT_TEMPLATE_FILE)]
    if eager:
        argv.append("--enforce-eager")
    return argv
