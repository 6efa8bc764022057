"""`kubetune`: the user's command line. `kubetune run MANIFEST` runs a FineTuneRun on this machine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubetune", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a FineTuneRun manifest locally (no cluster needed)")
    run.add_argument("manifest", type=Path)
    run.add_argument("--store", type=Path, default=None,
                     help="artifact directory when the manifest names no object store (default ~/.cache/kubetune/runs)")
    run.add_argument("--serve", action="store_true",
                     help="afterwards, serve the tuned model with an OpenAI-compatible API")
    run.add_argument("--port", type=int, default=8000, help="port for --serve")
    check = sub.add_parser("validate", help="check a manifest as the operator would, without running it")
    check.add_argument("manifest", type=Path)
    args = parser.parse_args(argv)

    from .finetunerun import api, local

    console = Console()
    if args.command == "validate":
        try:
            run_obj = local.load(args.manifest)
        except api.SpecError as exc:
            console.print(f"[red]invalid manifest[/] {args.manifest}: {exc}")
            return 2
        console.print(f"{args.manifest}: FineTuneRun {run_obj.metadata.name} is valid")
        return 0
    return local.run(args.manifest, args.store, args.serve, args.port, console)


if __name__ == "__main__":
    sys.exit(main())
