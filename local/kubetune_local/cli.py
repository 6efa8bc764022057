"""`kubetune`: the user's command line, the local executors of the operator's resources.

    kubetune run MANIFEST        run a FineTuneRun on this machine (the operator's plan, as subprocesses)
    kubetune serve MANIFEST      serve a ModelServe's model on this machine with real vLLM
    kubetune validate MANIFEST   check manifests (FineTuneRun, ModelServe) as the operator would
    kubetune report TARGET       write report.html of a run or a serve (curves, scores, examples, benchmark)
"""

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
    run.add_argument("--serve", action="store_true", help="afterwards, serve the tuned model (as `kubetune serve`)")
    run.add_argument("--port", type=int, default=8000, help="port for --serve")
    serve = sub.add_parser("serve", help="serve a ModelServe manifest's model locally with vLLM")
    serve.add_argument("manifest", type=Path)
    serve.add_argument("--store", type=Path, default=None, help="the artifact directory `kubetune run` used")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--against", metavar="MODEL", default=None,
                       help="run the promotion gate first: MODEL (a directory, s3:// URI or bundled:NAME) is the "
                            "model serving now, the manifest's the candidate; serve the winner")
    serve.add_argument("--gate-only", action="store_true", help="with --against: decide and exit (0 promoted, "
                                                                 "3 rejected)")
    check = sub.add_parser("validate", help="check manifests as the operator would, without running them")
    check.add_argument("manifest", type=Path, nargs="+")
    report = sub.add_parser("report", help="write report.html of a run or a serve from its records")
    report.add_argument("target", help="a run's directory (<store>/<namespace>/<run>), s3://<bucket>/<namespace>/<run>, "
                                       "or a serve's records (.../<namespace>/serves/<serve>)")
    report.add_argument("--output", default=None, help="where to write it (default: report.html in TARGET)")
    args = parser.parse_args(argv)

    console = Console()
    if args.command == "validate":
        from .validate import validate

        return validate(args.manifest, console)
    if args.command == "report":
        from kubetune_jobs.storage import StorageError

        from . import report as reports

        try:
            console.print(f"report: {reports.write(args.target, args.output)}", markup=False, highlight=False,
                          soft_wrap=True)
        except (reports.ReportError, OSError, StorageError) as exc:
            console.print(f"✗ {exc}", markup=False, highlight=False, soft_wrap=True)
            return 2
        return 0
    from . import run

    store = Path(args.store or run.default_store()).expanduser()
    if args.command == "serve":
        from . import serve

        return serve.run(args.manifest, store, args.port, console, against=args.against, gate_only=args.gate_only)
    return run.run(args.manifest, store, args.serve, args.port, console)


if __name__ == "__main__":
    sys.exit(main())
