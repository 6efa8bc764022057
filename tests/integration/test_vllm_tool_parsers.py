"""The tool parsers a ModelServe may name are the ones the vLLM we test against registers.

`spec.vllm.toolCallParser` is checked at admission against `modelserve.vllm.TOOL_PARSERS` (the operator
never imports vLLM); this keeps that list equal to the real one, so a parser vLLM lacks is refused with a
condition before any pod starts and every parser it has is admitted.
"""

from __future__ import annotations

import json
import subprocess

from kubetune_jobs.serving.vllm_server import server_env, vllm_python
from kubetune_operator.modelserve.vllm import TOOL_PARSERS

LIST = ("import json\nfrom vllm.tool_parsers.abstract_tool_parser import ToolParserManager as M\n"
        "import vllm.tool_parsers\n"
        "print(json.dumps(sorted(set(M.tool_parsers) | set(M.lazy_parsers))))")


def test_admitted_tool_parsers_are_vllms() -> None:
    python = vllm_python()
    done = subprocess.run([str(python), "-c", LIST], capture_output=True, text=True, timeout=300,
                          env=server_env(python=python))
    assert done.returncode == 0, done.stderr[-3000:]
    registered = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "hermes" in registered
    assert TOOL_PARSERS == registered, (sorted(registered - TOOL_PARSERS), sorted(TOOL_PARSERS - registered))
