"""The operator image has no torch: its modules must import without torch and without the jobs' code other
than the storage layer."""

from __future__ import annotations

import subprocess
import sys

MODULES = ["api", "crd", "layout", "naming", "plan", "resources", "status", "store", "validation", "metrics",
           "handlers", "main"]


def test_operator_modules_import_neither_torch_nor_job_code() -> None:
    code = (
        "import sys\n"
        + "".join(f"import kubetune_operator.{m}\n" for m in MODULES)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'trl', 'peft')"
        " or (m.startswith('kubetune_jobs.') and m != 'kubetune_jobs.storage'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
