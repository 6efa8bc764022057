"""The model the vLLM tests serve and the api_server flags they serve it with.

The servable copy of the bundled SmolLM2 lives at a fixed path under the kubetune cache, named by a
hash of our template: vLLM keys its compile cache by the model's path, so a new temporary directory
every session would make every session's first start a cold one.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kubetune_jobs import chat_template
from kubetune_jobs.models import cache_dir, resolve
from kubetune_jobs.serving.process import free_port
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


@functools.cache
def served_dtype() -> str:
    """vLLM's --dtype for the tests' servers: bfloat16 where this CPU generates faster in bf16 (the evaluator's
    own measured choice, `precision: auto`), float32 elsewhere. On a 2-core AVX2 CPU without bf16 units vLLM
    started in 223 s and generated 15 tok/s at 8 requests in bfloat16, against 98 s and 39 tok/s in float32
    (BENCHMARKS.md, "vLLM start-up on a CPU")."""
    from kubetune_jobs import precision

    return "bfloat16" if precision.auto(precision.GENERATION).name == "bf16" else "float32"


def serve_spec(*, eager: bool = True) -> Any:
    """The ModelServe the tests' server is: the bundled model on the CPU, our template, hermes."""
    from kubetune_operator.modelserve import api

    return api.RESOURCE.parse_spec({"model": {"hub": "HuggingFaceTB/SmolLM2-135M-Instruct"}, "servedModelName": SERVED_NAME,
                           "vllm": {"dtype": served_dtype(), "maxModelLen": 4096,
                                    "extraArgs": ["--seed", "0", *(["--enforce-eager"] if eager else [])]},
                           "resources": {"gpus": 0}})


def smollm2_argv(model_dir: Path, *, eager: bool = True) -> list[str]:
    """vLLM api_server flags for serving `model_dir`, built by the operator's own builder (what a ModelServe's
    Deployment and `kubetune serve` run). Eager by default: on this CPU a compiled start takes minutes for
    little the tests use (figures in BENCHMARKS.md)."""
    from kubetune_operator.modelserve import vllm

    files = vllm.ModelFiles(model=str(model_dir), chat_template=str(model_dir / CHAT_TEMPLATE_FILE))
    return vllm.argv(serve_spec(eager=eager), SERVED_NAME, files, host="127.0.0.1", port=free_port())
