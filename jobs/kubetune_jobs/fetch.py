"""`kubetune-job fetch`: a serving pod's init step. Copies a complete model directory (and optionally a LoRA
adapter) from the object store or a local directory into the pod's model volume, verifying every file
against the directory's completeness marker, from either alike; a directory without its marker, with a file
that does not match, or with a symbolic link that leaves it, is refused. Only the files the marker lists
are copied, each as a regular file."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from . import storage
from .contract.options import FetchOptions

log = logging.getLogger(__name__)


def _fetch(uri: str, dest: Path) -> int:
    storage.location(uri).download_dir(dest, copy=True)  # checked whole before anything is written
    dest.mkdir(parents=True, exist_ok=True)  # (a complete directory may list no file)
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
