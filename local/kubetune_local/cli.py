"""`kubetune`: the user's command line, the local executors of the operator's resources.

    kubetune run MANIFEST        run a FineTuneRun on this machine (the operator's plan, as subprocesses)
    kubetune serve MANIFEST      serve a ModelServe's model on this machine with real vLLM
    kubetune validate MANIFEST   check manifests (FineTuneRun, ModelServe) as the operator would
    kubetune gate MANIFEST       a ModelServe's promotion gate on evaluation reports (--candidate, --serving)
    kubetune report TARGET       write report.html of a run or a serve (curves, scores, examples, benchmark)

Every command ends a failure with one line naming its cause, and stops what it started on Ctrl-C or
SIGTERM (`lifecycle`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1-65535)")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import gate, store_timeout

    parser = argparse.ArgumentParser(prog="kubetune", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a FineTuneRun manifest locally (no cluster needed)")
    run.add_argument("manifest", type=Path)
    run.add_argument("--store", type=Path, default=None,
                     help="artifact directory when the manifest names no object store (default ~/.cache/kubetune/runs)")
    run.add_argument("--serve", action="store_true", help="afterwards, serve the tuned model (as `kubetune serve`)")
    run.add_argument("--port", type=port, default=8000, help="port for --serve")
    run.add_argument(store_timeout.FLAG, type=store_timeout.seconds, default=None, metavar="SECONDS",
                     help=store_timeout.HELP)
    serve = sub.add_parser("serve", help="serve a ModelServe manifest's model locally with vLLM")
    serve.add_argument("manifest", type=Path)
    serve.add_argument("--store", type=Path, default=None, help="the artifact directory `kubetune run` used")
    serve.add_argument("--port", type=port, default=8000)
    serve.add_argument("--against", metavar="MODEL", default=None,
                       help="run the promotion gate first: MODEL (a directory, s3:// URI or bundled:NAME) is the "
                            "model serving now, the manifest's the candidate; serve the winner")
    serve.add_argument("--gate-only", action="store_true", help="with --against: decide and exit (0 promoted, "
                                                                 "3 rejected, 2 unusable report)")
    serve.add_argument(store_timeout.FLAG, type=store_timeout.seconds, default=None, metavar="SECONDS",
                       help=store_timeout.HELP)
    check = sub.add_parser("validate", help="check manifests as the operator would, without running them")
    check.add_argument("manifest", type=Path, nargs="+")
    decide = sub.add_parser("gate", help="apply a ModelServe's promotion gate to evaluation reports (exit 0 "
                            "promote, 3 rejected, 2 unusable input)", epilog=gate.EXIT_CODES,
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            description="The operator's promotion gate on report.json files, outside the cluster:\n"
                            "the manifest's spec.promotion (suites, thresholds) decides whether the candidate may\n"
                            "replace the serving model; every criterion is printed with both sides' figures.")
    decide.add_argument("manifest", type=Path, help="the ModelServe manifest whose spec.promotion gates")
    decide.add_argument("--candidate", type=Path, required=True, metavar="REPORT.json",
                        help="the candidate's evaluation report (kubetune-job evaluate's report.json)")
    decide.add_argument("--serving", type=Path, default=None, metavar="REPORT.json",
                        help="the serving model's report on the same suites; omitted: a first rollout (nothing "
                             "is compared, and the verdict says so)")
    decide.add_argument("--candidate-bench", type=Path, default=None, metavar="BENCH.json",
                        help="the candidate's benchmark (kubetune-job bench's bench.json): read by the serving "
                             "objectives (maxTTFTp95Ms, minThroughputRatio)")
    decide.add_argument("--serving-bench", type=Path, default=None, metavar="BENCH.json",
                        help="the serving model's benchmark: read by minThroughputRatio")
    report = sub.add_parser("report", help="write report.html of a run or a serve from its records")
    report.add_argument("target", help="a run's directory (<store>/<namespace>/<run>), s3://<bucket>/<namespace>/<run>, "
                                       "or a serve's records (.../<namespace>/serves/<serve>)")
    report.add_argument("--output", default=None, help="where to write it (default: report.html in TARGET)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from . import lifecycle

    args = build_parser().parse_args(argv)
    with lifecycle.signals_handled():
        return lifecycle.guarded(args.command, lambda: _command(args))


def _command(args: argparse.Namespace) -> int:
    from .lifecycle import console as make_console

    console = make_console()
    if args.command == "validate":
        from .validate import validate

        return validate(args.manifest, console)
    if args.command == "gate":
        from . import gate

        return gate.run(args.manifest, args.candidate, args.serving, console, candidate_bench=args.candidate_bench,
                        serving_bench=args.serving_bench)
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
    from . import run, store_timeout

    store_timeout.configure(args.store_timeout)
    store = Path(args.store or run.default_store()).expanduser()
    if args.command == "serve":
        from . import serve

        return serve.run(args.manifest, store, args.port, console, against=args.against, gate_only=args.gate_only)
    return run.run(args.manifest, store, args.serve, args.port, console)


if __name__ == "__main__":
    sys.exit(main())
