"""The bundled model is converted from its GGUF file once per cache, and processes sharing a cache (the
suite's parallel workers, several jobs on one node) may all find it missing at the same moment: each
converts aside, the first to finish wins, and none fails or leaves a partial directory behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RESOLVE = "from kubetune_jobs.models import resolve; print(resolve('bundled:smollm2-135m'))"


@pytest.mark.slow
def test_concurrent_first_uses_of_an_empty_cache_all_succeed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "KUBETUNE_CACHE": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-c", RESOLVE], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    paths = {out.strip().splitlines()[-1] for out, _ in outputs}
    assert paths == {str(cache / "models" / "smollm2-135m")}
    model = Path(paths.pop())
    assert (model / "config.json").exists() and list(model.glob("*.safetensors"))
    # The loser's copy is gone: only the model remains in the cache's models directory.
    assert [p.name for p in (cache / "models").iterdir()] == ["smollm2-135m"]
