"""The operator image has no torch: its modules must import without torch and without the jobs' code other
than the contract and the storage layer."""

from __future__ import annotations

import subprocess
import sys

MODULES = ["apitypes", "crd", "naming", "settings", "metrics", "registry", "main", "cli", "urls",
           "kube.client", "kube.objects", "kube.status", "kube.conditions", "kube.jobs", "kube.pods",
           "finetunerun.api", "finetunerun.plan", "finetunerun.jobs", "finetunerun.results",
           "finetunerun.reconcile", "finetunerun.validation", "finetunerun.handlers", "finetunerun.local"]


def test_operator_modules_import_neither_torch_nor_job_code() -> None:
    code = (
        "import sys\n"
        + "".join(f"import kubetune_operator.{m}\n" for m in MODULES)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'trl', 'peft')"
        " or (m.startswith('kubetune_jobs.') and m != 'kubetune_jobs.storage'"
        " and not m.startswith('kubetune_jobs.contract')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
