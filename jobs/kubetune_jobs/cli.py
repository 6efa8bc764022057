"""`kubetune-job`: the workloads' command line, the only contract between the operator and the jobs.

The flags are defined once, typed, in `contract.options`; the operator (and `kubetune run`) build their
command lines from the same definitions. Each subcommand receives its options object, and its
implementation is imported only when it runs, so `prepare` never pays for torch.
Exit codes: 0 done (or already done), 1 failed with a one-line reason on stderr, 2 bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .contract.options import JOBS

SUBCOMMANDS = {
    "prepare": "kubetune_jobs.data.prepare",
    "train": "kubetune_jobs.train.run",
    "evaluate": "kubetune_jobs.evaluate.run",
    "serve": "kubetune_jobs.serving.run",
    "bench": "kubetune_jobs.bench.run",
    "probe": "kubetune_jobs.probe.run",
    "adapters": "kubetune_jobs.serving.adapters",
    "fetch": "kubetune_jobs.fetch",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubetune-job", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in SUBCOMMANDS:
        options = JOBS[command]
        options.add_arguments(sub.add_parser(command, help=options.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        # Inside: an interrupt while the implementation imports (torch: seconds) ends as one elsewhere does.
        if args.command in ("train", "evaluate", "serve"):
            from .runtime import configure_threads

            configure_threads()
        module = importlib.import_module(SUBCOMMANDS[args.command])
        options = JOBS[args.command].from_namespace(args)
        return int(module.run(options) or 0)
    except KeyboardInterrupt:
        print(f"kubetune-job {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the job's contract is one line on stderr and exit 1
        if args.verbose:
            raise
        print(f"kubetune-job {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
