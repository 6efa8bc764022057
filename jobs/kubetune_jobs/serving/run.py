"""`kubetune-job serve`: a tuned model behind an OpenAI-compatible API (tool calls included), locally.

It serves with `transformers serve` (the CPU fallback in `transformers_server`); in a cluster the
operator serves the same model directory with vLLM.
"""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path
from typing import Any

from .example import curl
from .process import ServerError
from .template import servable_copy
from .transformers_server import LocalServer


def _stop_on_sigterm(*_: Any) -> None:
    raise KeyboardInterrupt


def run(args: Any) -> int:
    from .. import models

    # The server runs in a process group of its own: a SIGTERM here (kill, a container stopping) must
    # stop it as Ctrl-C does, through the `with` below.
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    source = models.resolve(args.model)
    if not Path(source).is_dir():
        raise ValueError(f"{args.model}: serve needs a model directory (local, s3:// or bundled:)")
    with tempfile.TemporaryDirectory(prefix="kubetune-serve-") as tmp:
        servable = servable_copy(source, Path(tmp) / "model")
        with LocalServer(servable, port=args.port) as server:
            print(f"serving {args.model} at {server.base_url} with transformers serve (the CPU fallback; "
                  "a cluster serves with vLLM). Ctrl-C to stop; try:\n", flush=True)
            print(curl(server.base_url, server.model), flush=True)
            try:
                server.wait()
            except KeyboardInterrupt:
                return 0
            raise ServerError(f"the server stopped:\n{server.log_tail()}")
