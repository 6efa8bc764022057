"""Unsloth must be imported before transformers/trl/peft, so loading the train job imports none of them."""

from __future__ import annotations

import subprocess
import sys


def test_loading_the_train_job_imports_no_training_library() -> None:
    code = ("import sys, kubetune_jobs.cli as c, importlib; importlib.import_module(c.SUBCOMMANDS['train']); "
            "print(sorted(m for m in ('transformers', 'trl', 'peft', 'unsloth', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
