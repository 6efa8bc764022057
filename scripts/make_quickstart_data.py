"""Write the quickstart's bundled datasets (our own synthetic data, see scripts/datagen).

    python scripts/make_quickstart_data.py [--out DIR]

Deterministic: re-running rewrites byte-identical files, and a unit test checks the committed files
equal what this script generates.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datagen import chat_rows, write_jsonl, xlam_rows

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "jobs" / "kubetune_jobs" / "assets" / "datasets"
SEED = 20250101
# Small on purpose: the demo trains on CPU within its 15-minute budget.
FILES = {
    "quickstart-chat.jsonl": lambda: chat_rows(400, SEED),
    "quickstart-tools.jsonl": lambda: xlam_rows(600, SEED + 1),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, make in FILES.items():
        rows = make()
        data = write_jsonl(rows)
        target = args.out / name
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)  # atomic: a reader never sees half a file
        print(f"{target}: {len(rows)} rows, {len(data) / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
