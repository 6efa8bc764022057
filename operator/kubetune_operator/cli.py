"""`kubetune`: the user's command line.

    kubetune run MANIFEST        run a FineTuneRun on this machine (the operator's plan, as subprocesses)
    kubetune serve MANIFEST      serve a ModelServe's model on this machine with real vLLM
    kubetune validate MANIFEST   check manifests (FineTuneRun, ModelServe) as the operator would
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

MESSAGE_LIMIT = 4000  # a message naming a field is short; a pasted 1 MB key is not worth printing whole
_KINDS = {dict: "mapping", list: "list", str: "string", int: "number", float: "number", bool: "boolean"}


def say(console: Console, text: str) -> None:
    """Print a line that holds the user's text verbatim: no markup (`[/x]`), emoji codes or highlighting."""
    console.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)


def _validate(paths: list[Path], console: Console) -> int:
    from .apitypes import SpecError, read_documents, shown
    from .finetunerun import api as ftr_api
    from .finetunerun import validation as ftr_validation
    from .modelserve import api as ms_api
    from .modelserve import validation as ms_validation

    kinds = {ftr_api.KIND: (ftr_api.RESOURCE, ftr_validation.problems),
             ms_api.KIND: (ms_api.RESOURCE, ms_validation.problems)}
    failed = 0

    def refuse(path: Path, text: str) -> None:
        nonlocal failed
        if len(text) > MESSAGE_LIMIT:
            text = text[:MESSAGE_LIMIT] + " …"
        say(console, f"invalid manifest {path}: {text}")
        failed += 1

    for path in paths:
        try:
            docs = read_documents(path)
        except (SpecError, RecursionError) as exc:
            refuse(path, str(exc) if isinstance(exc, SpecError) else f"{path}: nested too deeply")
            continue
        if not docs:
            refuse(path, f"{path}: no document")
        seen: dict[tuple[str, str, str], int] = {}
        for i, doc in enumerate(docs):
            where = f"document {i + 1}: " if len(docs) > 1 else ""
            if not isinstance(doc, dict):
                refuse(path, f"document {i + 1}: a manifest is a mapping (apiVersion, kind, metadata, spec), not "
                             f"a {_KINDS.get(type(doc), type(doc).__name__)}")
                continue
            try:
                kind = doc.get("kind")
                if not isinstance(kind, str) or kind not in kinds:
                    raise SpecError(f"kind: {shown(kind)} is not one of {', '.join(kinds)}")
                resource, semantic = kinds[kind]
                parsed = resource.parse_manifest(doc)
                problems = semantic(parsed.spec)
                if problems:
                    raise SpecError("; ".join(problems))
                meta = parsed.metadata
                identity = (kind, meta.namespace, meta.name)
                if identity in seen:
                    raise SpecError(f"metadata.name: {kind} {meta.namespace}/{meta.name} is also document "
                                    f"{seen[identity]}; one file defines each resource once")
                seen[identity] = i + 1
                say(console, f"{path}: {where}{kind} {meta.name} is valid")
            except (SpecError, RecursionError) as exc:
                refuse(path, where + (str(exc) if isinstance(exc, SpecError) else "nested too deeply"))
    return 2 if failed else 0


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
    args = parser.parse_args(argv)

    console = Console()
    if args.command == "validate":
        return _validate(args.manifest, console)
    from .finetunerun import local

    store = Path(args.store or local.default_store()).expanduser()
    if args.command == "serve":
        from .modelserve import local as serving

        return serving.run(args.manifest, store, args.port, console, against=args.against, gate_only=args.gate_only)
    return local.run(args.manifest, store, args.serve, args.port, console)


if __name__ == "__main__":
    sys.exit(main())
