#!/usr/bin/env python3
"""Write the FineTuneRun and ModelServe reference pages (docs/<kind>.md) from the generated CRDs.

    python scripts/gen_crd_docs.py          # write
    python scripts/gen_crd_docs.py --check  # exit 1 when a committed page differs from the CRD

Each page walks the CRD's openAPIV3Schema (the one `scripts/gen_crds.py` writes): one row per field with its
path, type, default, bounds and description, then the CEL rules the API server enforces. The schema is the
only source, so a field documented here is a field the API server accepts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "operator"), str(ROOT / "jobs")]

from kubetune_operator import crd  # noqa: E402

DOCS = ROOT / "docs"
SHORT_DEFAULT = 48  # a longer default (a whole object) is left to its fields' rows
IMMUTABLE = "self == oldSelf"


def page_path(kind: Any) -> Path:
    return DOCS / f"{kind.singular}.md"


def cell(text: str) -> str:
    """Text safe inside a table cell: one line, pipes escaped (also inside code spans, as GFM reads them)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def code(value: Any) -> str:
    text = value if isinstance(value, str) and value else json.dumps(value, separators=(", ", ": "))
    tick = "``" if "`" in text else "`"
    pad = " " if tick == "``" else ""
    return f"{tick}{pad}{text}{pad}{tick}"


def type_of(node: dict[str, Any]) -> str:
    kind = node.get("type", "any")
    if kind == "array":
        item = node.get("items", {})
        return f"array of {type_of(item)}" if item.get("type") != "object" else "array of objects"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map of {type_of(node['additionalProperties'])}"
    if kind == "object" and node.get("x-kubernetes-preserve-unknown-fields") and "properties" not in node:
        return "object (free-form)"
    return kind


def _range(node: dict[str, Any]) -> str | None:
    """Numeric bounds as an interval: [1, 1024], (0.0, 0.5), ≥ -1."""
    low, high = node.get("minimum"), node.get("maximum")
    if low is None and high is None:
        return None
    if high is None:
        return f"{'>' if node.get('exclusiveMinimum') else '≥'} {low}"
    if low is None:
        return f"{'<' if node.get('exclusiveMaximum') else '≤'} {high}"
    return f"{'(' if node.get('exclusiveMinimum') else '['}{low}, {high}{')' if node.get('exclusiveMaximum') else ']'}"


def _count(node: dict[str, Any], low: str, high: str, unit: str) -> str | None:
    """Length bounds: 1-512 characters, at most 8 items."""
    if low in node and high in node:
        return f"{node[low]}-{node[high]} {unit}"
    if low in node:
        return f"at least {node[low]} {unit}"
    if high in node:
        return f"at most {node[high]} {unit}"
    return None


def bounds(node: dict[str, Any], required: bool) -> str:
    parts: list[str | None] = ["required" if required else None]
    if "enum" in node:
        parts.append("one of " + ", ".join(code(v) for v in node["enum"]))
    parts += [_range(node), _count(node, "minLength", "maxLength", "characters"),
              _count(node, "minItems", "maxItems", "items"), _count(node, "minProperties", "maxProperties", "keys")]
    if "pattern" in node:
        parts.append("matches " + code(node["pattern"]))
    if node.get("nullable"):
        parts.append("may be null")
    if any(r.get("rule") == IMMUTABLE for r in node.get("x-kubernetes-validations", [])):
        parts.append("immutable")
    return "; ".join(p for p in parts if p)


def default_of(node: dict[str, Any]) -> str:
    if "default" not in node:
        return ""
    value = node["default"]
    text = code(value)
    children = node.get("properties", {})
    if (isinstance(value, dict) and len(text) > SHORT_DEFAULT and children
            and all(children.get(k, {}).get("default") == v for k, v in value.items())):
        return "its fields' defaults"
    return text


def fields(node: dict[str, Any], path: str, required: bool = False) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(path, schema node, required) of `node` and of every field below it, depth first, in schema order."""
    yield path, node, required
    wanted = set(node.get("required", []))
    for name, sub in node.get("properties", {}).items():
        yield from fields(sub, f"{path}.{name}", name in wanted)
    items = node.get("items")
    if isinstance(items, dict) and "properties" in items:
        for name, sub in items["properties"].items():
            yield from fields(sub, f"{path}[].{name}", name in set(items.get("required", [])))
    values = node.get("additionalProperties")
    if isinstance(values, dict) and "properties" in values:
        for name, sub in values["properties"].items():
            yield from fields(sub, f"{path}.<key>.{name}", name in set(values.get("required", [])))


def rules(node: dict[str, Any], path: str) -> Iterator[tuple[str, str, str]]:
    """(path, CEL rule, message) of every x-kubernetes-validations rule at or below `node`."""
    for field_path, sub, _ in fields(node, path):
        for rule in sub.get("x-kubernetes-validations", []):
            yield field_path, rule["rule"], rule.get("message", "")
        items = sub.get("items")
        if isinstance(items, dict):
            for rule in items.get("x-kubernetes-validations", []):
                yield f"{field_path}[]", rule["rule"], rule.get("message", "")


def table(node: dict[str, Any], path: str) -> list[str]:
    lines = ["| field | type | default | bounds | description |", "|---|---|---|---|---|"]
    for field_path, sub, required in list(fields(node, path))[1:]:
        lines.append(f"| {code(field_path)} | {cell(type_of(sub))} | {cell(default_of(sub))} | "
                     f"{cell(bounds(sub, required))} | {cell(sub.get('description', ''))} |")
    return lines


def render(kind: Any) -> str:
    definition = crd.crd(kind)
    spec = definition["spec"]
    version = spec["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    source = Path("manifests") / "crds" / crd.filename(kind)
    names = spec["names"]
    lines = [
        f"# {kind.kind} reference",
        "",
        f"<!-- Generated by scripts/gen_crd_docs.py from the CRD ({source}). Do not edit: run the script. -->",
        "",
        f"`{spec['group']}/{version['name']}`, kind `{kind.kind}`, {spec['scope'].lower()}; "
        f"`kubectl get {names['plural']}` (short name{'s' if len(names['shortNames']) > 1 else ''} "
        f"{', '.join(code(n) for n in names['shortNames'])}). {cell(schema.get('description', ''))}",
        "",
        f"The schema is [{source.name}](../{source.as_posix()}), generated from the pydantic models in "
        "`operator/kubetune_operator/`. The API server applies the defaults and bounds below; "
        "`kubetune validate` and the operator also check what a schema cannot say (each problem names its field).",
        "",
        f"## `kubectl get {names['plural']}` columns",
        "",
        "| column | type | from |",
        "|---|---|---|",
    ]
    lines += [f"| {c['name']} | {c['type']} | {code(c['jsonPath'])} |" for c in version["additionalPrinterColumns"]]
    for part in ("spec", "status"):
        node = schema["properties"][part]
        lines += ["", f"## {part}", "", cell(node.get("description", "")), ""]
        lines += table(node, part)
    found = list(rules(schema["properties"]["spec"], "spec"))
    if found:
        lines += ["", "## Validation rules", "",
                  "CEL rules (`x-kubernetes-validations`) the API server checks on every create and update.", "",
                  "| field | rule | message |", "|---|---|---|"]
        lines += [f"| {code(p)} | {code(cell(r))} | {cell(m)} |" for p, r, m in found]
    return "\n".join(lines) + "\n"


def targets() -> dict[Path, str]:
    return {page_path(kind): render(kind) for kind in crd.KINDS}


def shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    stale = {path: text for path, text in targets().items() if not path.exists() or path.read_text() != text}
    if args.check:
        for path in stale:
            print(f"{shown(path)} differs from the CRD; run scripts/gen_crd_docs.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in stale.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
