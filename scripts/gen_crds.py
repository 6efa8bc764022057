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
sys.path.insert(0, str(ROOT / "operator"))

from kubetune_operator import crd  # noqa: E402

TARGETS = [ROOT / "manifests" / "crds" / crd.CRD_FILENAME, ROOT / "charts" / "kubetune" / "crds" / crd.CRD_FILENAME]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = crd.render()
    stale = [t for t in TARGETS if not t.exists() or t.read_text() != text]
    if args.check:
        for t in stale:
            print(f"{t.relative_to(ROOT)} differs from the models; run scripts/gen_crds.py", file=sys.stderr)
        return 1 if stale else 0
    for t in stale:
        t.parent.mkdir(parents=True, exist_ok=True)
        t.write_text(text)
        print(f"wrote {t.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
