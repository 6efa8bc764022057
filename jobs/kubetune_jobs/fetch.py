"""`kubetune-job fetch`: a serving pod's init step. Copies a complete model directory (and optionally a LoRA
adapter) from the object store into the pod's model volume, verifying every file against the directory's
completeness marker; a directory without its marker, or with a file that does not match, is refused."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from . import storage
from .contract.options import FetchOptions

log = logging.getLogger(__name__)


def _fetch(uri: str, dest: Path) -> int:
    loc = storage.location(uri)
    if not loc.is_complete_dir():
        raise FileNotFoundError(f"{uri} is not a complete directory (no completeness marker)")
    dest.mkdir(parents=True, exist_ok=True)
    if isinstance(loc, storage.LocalLocation):
        import shutil

        shutil.copytree(loc.path, dest, dirs_exist_ok=True)
    else:
        loc.download_dir(dest)
    return sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())


def run(args: FetchOptions) -> int:
    started = time.monotonic()
    size = _fetch(args.model, Path(args.dest))
    lines = [f"fetched {args.model} -> {args.dest} ({size / 2**20:.1f} MiB)"]
    if args.adapter:
        adapter_dest = Path(f"{args.dest.rstrip('/')}-adapter")
        size_a = _fetch(args.adapter, adapter_dest)
        lines.append(f"fetched {args.adapter} -> {adapter_dest} ({size_a / 2**20:.1f} MiB)")
    lines.append(f"took {time.monotonic() - started:.1f} s")
    print("\n".join(lines))
    return 0
