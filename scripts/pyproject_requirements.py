#!/usr/bin/env python3
"""Print the requirements of pyproject.toml's [project] dependencies plus the named extras, one a line.

    python scripts/pyproject_requirements.py operator > requirements.txt

The Dockerfiles install these before copying the source, so the dependency layers are rebuilt only when
pyproject.toml changes. Standard library only (it runs on a bare Python image).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"pyproject_requirements: no extra {', '.join(unknown)} in {pyproject}")
    return list(project.get("dependencies", [])) + [r for e in extras for r in optional[e]]


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    print("\n".join(requirements(root / "pyproject.toml", sys.argv[1:])))
