"""The operator image has no torch and no job code: every operator module must import without torch and
without the jobs' code other than the contract and the storage layer; and the local executors
(`kubetune_local`) import both sides while nothing in the operator or the jobs imports them."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import kubetune_operator

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(m.name for m in pkgutil.walk_packages(kubetune_operator.__path__, "kubetune_operator."))


def test_every_operator_module_is_checked() -> None:
    """pkgutil (as the operator image's build check) skips a folder without __init__.py: there is none."""
    files = list(Path(kubetune_operator.__file__).parent.rglob("*.py"))
    assert len(MODULES) == len(files) - 1  # the package's own __init__ aside


def test_operator_modules_import_neither_torch_nor_job_code() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'trl', 'peft', "
        "'kubetune_local') or (m.startswith('kubetune_jobs.') and m != 'kubetune_jobs.storage'"
        " and not m.startswith('kubetune_jobs.contract')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_nothing_but_the_local_executors_imports_them() -> None:
    offenders = [str(p.relative_to(ROOT)) for folder in ("operator", "jobs") for p in (ROOT / folder).rglob("*.py")
                 if any(n.split(".")[0] == "kubetune_local" for n in _imported(p))]
    assert offenders == []
