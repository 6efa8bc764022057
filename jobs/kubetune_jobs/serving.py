"""What a model directory needs to be served with tool calls, and a local OpenAI-compatible server.

vLLM is given our template with `--chat-template` and parses calls with `--tool-call-parser hermes`.
`transformers serve` (the local, CPU stand-in) reads the template from the tokenizer and parses calls
with the tokenizer's `response_template`; it knows one only for Qwen-family model types, so for other
architectures (the bundled SmolLM2 is `llama`) the Qwen2.5 one is written into the tokenizer.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from . import chat_template

QWEN_MODEL_TYPES = ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe")


def _qwen_response_template() -> dict[str, Any]:
    # transformers keeps its per-architecture parsing rules in a private table; ours must be the very
    # same rule for the Qwen2.5 template, so it is looked up there rather than copied.
    from transformers.cli.serving import utils

    for model_types, tmpl in utils._RESPONSE_TEMPLATE_FALLBACKS.items():
        if "qwen2" in model_types:
            return tmpl
    raise RuntimeError("this transformers version has no response template for qwen2")


def apply_serving_template(tokenizer: Any, model_type: str) -> None:
    """Make `tokenizer` render and parse exactly what we train on (call before `save_pretrained`)."""
    tokenizer.chat_template = chat_template.template()
    if model_type not in QWEN_MODEL_TYPES:
        tokenizer.response_template = _qwen_response_template()


def servable_copy(model_dir: str | Path, dest: str | Path) -> Path:
    """A copy of `model_dir` whose tokenizer carries our template (and, for non-Qwen models, the
    response template `transformers serve` parses calls with). Weights are hard-linked when possible."""
    from transformers import AutoConfig, AutoTokenizer

    src, dest = Path(model_dir), Path(dest)
    shutil.copytree(src, dest, copy_function=_link_or_copy, dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(src)
    apply_serving_template(tokenizer, AutoConfig.from_pretrained(src).model_type)
    tokenizer.save_pretrained(dest)
    return dest


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerError(RuntimeError):
    """The local server did not come up; the message carries the tail of its log."""


class LocalServer:
    """`transformers serve <dir>` on a free loopback port, for as long as the `with` block lasts.

    `base_url` is the OpenAI-compatible root (…/v1) and `model` the name requests must use (the server
    is pinned to the directory it was given).
    """

    def __init__(self, model_dir: str | Path, *, port: int | None = None, startup_timeout: float = 300.0,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.model = str(model_dir)
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.startup_timeout = startup_timeout
        self.extra_args = extra_args
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def _command(self) -> list[str]:
        exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")
        if exe is None:
            raise ServerError("the `transformers` command is not installed (pip install 'transformers[serving]')")
        return [exe, "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port),
                "--device", "cpu" if not _cuda() else "auto", "--log-level", "warning", *self.extra_args]

    def log_tail(self, lines: int = 20) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> LocalServer:
        self._log = tempfile.NamedTemporaryFile(prefix="transformers-serve-", suffix=".log", delete=False)
        self._proc = subprocess.Popen(self._command(), stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        health = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self.log_tail()
                self.__exit__(None, None, None)
                raise ServerError(f"transformers serve exited with {self._proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(health, timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        tail = self.log_tail()
        self.__exit__(None, None, None)
        raise ServerError(f"transformers serve not healthy after {self.startup_timeout:.0f}s:\n{tail}")

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log is not None:
            self._log.close()


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


CURL_EXAMPLE = """curl -s {base}/chat/completions -H 'Content-Type: application/json' -d '{{
  "model": "{model}",
  "messages": [{{"role": "user", "content": "What is the weather in Lisbon today?"}}],
  "tools": [{{"type": "function", "function": {{"name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {{"type": "object", "properties": {{"location": {{"type": "string"}}}},
                   "required": ["location"]}}}}}}]
}}'"""


def run(args: Any) -> int:
    """`kubetune-job serve`: an OpenAI-compatible server (tool calls included) on a tuned model."""
    from . import models

    source = models.resolve(args.model)
    if not Path(source).is_dir():
        raise ValueError(f"{args.model}: serve needs a model directory (local, s3:// or bundled:)")
    with tempfile.TemporaryDirectory(prefix="kubetune-serve-") as tmp:
        servable = servable_copy(source, Path(tmp) / "model")
        with LocalServer(servable, port=args.port) as server:
            print(f"serving {args.model} at {server.base_url} (Ctrl-C to stop); try:\n", flush=True)
            print(CURL_EXAMPLE.format(base=server.base_url, model=server.model), flush=True)
            try:
                while server._proc is not None and server._proc.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                return 0
            raise ServerError(f"the server stopped:\n{server.log_tail()}")
