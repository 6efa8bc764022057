"""`kubetune validate MANIFEST...`: check manifests (FineTuneRun, ModelServe) as the operator would, without
running them; one line per document, exit 2 when any is refused."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from kubetune_operator.apitypes import SpecError, check_documents

MESSAGE_LIMIT = 4000  # a message naming a field is short; a pasted 1 MB key is not worth printing whole


def say(console: Console, text: str) -> None:
    """Print a line that holds the user's text verbatim: no markup (`[/x]`), emoji codes or highlighting."""
    console.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)


def validate(paths: list[Path], console: Console) -> int:
    failed = 0

    def refuse(path: Path, text: str) -> None:
        nonlocal failed
        if len(text) > MESSAGE_LIMIT:
            text = text[:MESSAGE_LIMIT] + " …"
        say(console, f"invalid manifest {path}: {text}")
        failed += 1

    for path in paths:
        try:
            documents = check_documents(path)
        except SpecError as exc:
            refuse(path, str(exc))
            continue
        for d in documents:
            if d.problem is not None:
                refuse(path, d.message())
            else:
                where = f"document {d.number}: " if d.of > 1 else ""
                say(console, f"{path}: {where}{d.kind} {d.manifest.metadata.name} is valid")
    return 2 if failed else 0
