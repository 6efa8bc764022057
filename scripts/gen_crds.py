#!/usr/bin/env python3
"""Write the CRDs generated from the pydantic models to manifests/crds/ and charts/kubetune/crds/.

    python scripts/gen_crds.py          # write
    python scripts/gen_crds.py --check  # exit 1 when the committed YAML differs from the models
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "operator"), str(ROOT / "jobs")]

from kubetune_operator import crd  # noqa: E402

DIRS = [ROOT / "manifests" / "crds", ROOT / "charts" / "kubetune" / "crds"]


def targets() -> dict[Path, str]:
    """Every CRD file and the text the models generate for it."""
    return {d / crd.filename(kind): crd.render(kind) for kind in crd.KINDS for d in DIRS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    wanted = targets()
    stale = [t for t, text in wanted.items() if not t.exists() or t.read_text() != text]
    extra = [p for d in DIRS for p in d.glob("*.yaml") if p not in wanted]
    if args.check:
        for t in stale:
            print(f"{t.relative_to(ROOT)} differs from the models; run scripts/gen_crds.py", file=sys.stderr)
        for p in extra:
            print(f"{p.relative_to(ROOT)} is no kind's CRD; remove it", file=sys.stderr)
        return 1 if stale or extra else 0
    for t in stale:
        t.parent.mkdir(parents=True, exist_ok=True)
        t.write_text(wanted[t])
        print(f"wrote {t.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
