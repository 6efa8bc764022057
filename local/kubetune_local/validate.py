"""`kubetune validate MANIFEST...`: check manifests (FineTuneRun, ModelServe) as the operator would, without
running them; one line per document, exit 2 when any is refused."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from kubetune_operator.apitypes import SpecError, read_documents, shown
from kubetune_operator.finetunerun import api as ftr_api
from kubetune_operator.finetunerun import validation as ftr_validation
from kubetune_operator.modelserve import api as ms_api
from kubetune_operator.modelserve import validation as ms_validation

MESSAGE_LIMIT = 4000  # a message naming a field is short; a pasted 1 MB key is not worth printing whole
_KINDS = {dict: "mapping", list: "list", str: "string", int: "number", float: "number", bool: "boolean"}


def say(console: Console, text: str) -> None:
    """Print a line that holds the user's text verbatim: no markup (`[/x]`), emoji codes or highlighting."""
    console.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)


def validate(paths: list[Path], console: Console) -> int:
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

