"""`transformers serve`: the fallback local server, for machines without vLLM's venv.

It serves `/v1/chat/completions` and `/health` on CPU, reads the chat template from the tokenizer and
turns `<tool_call>` text into `tool_calls` with the tokenizer's response template (see `template`).
Production serves with vLLM (`vllm_server`); this stands in where that is not installed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .process import ServerError, ServerProcess, free_port


class LocalServer(ServerProcess):
    """`transformers serve <dir>` on a free loopback port, for as long as the `with` block lasts.

    `base_url` is the OpenAI-compatible root (…/v1) and `model` the name requests must use (the server
    is pinned to the directory it was given).
    """

    def __init__(self, model_dir: str | Path, *, port: int | None = None, startup_timeout: float = 300.0,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.model = str(model_dir)
        port = port or free_port()
        super().__init__(_command(self.model, port, extra_args), port=port, name="transformers serve",
                         startup_timeout=startup_timeout)
        self.base_url = f"{self.root_url}/v1"


def _command(model: str, port: int, extra_args: tuple[str, ...]) -> list[str]:
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")
    if exe is None:
        raise ServerError("the `transformers` command is not installed (pip install 'transformers[serving]')")
    return [exe, "serve", model, "--host", "127.0.0.1", "--port", str(port),
            "--device", "auto" if _cuda() else "cpu", "--log-level", "warning", *extra_args]


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()
