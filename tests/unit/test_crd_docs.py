"""The FineTuneRun and ModelServe reference pages are what scripts/gen_crd_docs.py writes from the CRDs: a
field added to a model reaches the CRD (tests/unit/test_crd.py) and from there the docs, or a test fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gen_crd_docs

from kubetune_operator import crd

ROOT = Path(__file__).resolve().parents[2]


def schema(kind) -> dict:
    return crd.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_committed_pages_are_what_the_script_writes() -> None:
    for kind in crd.KINDS:
        page = gen_crd_docs.page_path(kind)
        assert page.exists(), f"{page} missing: run scripts/gen_crd_docs.py"
        assert page.read_text() == gen_crd_docs.render(kind), f"{page} is stale: run scripts/gen_crd_docs.py"
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_crd_docs.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_every_field_has_a_row_with_its_default_and_bounds() -> None:
    for kind in crd.KINDS:
        text = gen_crd_docs.render(kind).split("## Validation rules")[0]
        for part in ("spec", "status"):
            for path, node, _ in list(gen_crd_docs.fields(schema(kind)["properties"][part], part))[1:]:
                rows = [line for line in text.splitlines() if line.startswith(f"| `{path}` |")]
                assert len(rows) == 1, f"{kind.kind}: {path} has {len(rows)} rows"
                if isinstance(node.get("default"), int | float | str) and not isinstance(node["default"], bool):
                    assert gen_crd_docs.code(node["default"]) in rows[0], f"{path}: default missing"
                if "maximum" in node:
                    assert str(node["maximum"]) in rows[0], f"{path}: maximum missing"


def test_bounds_read_as_the_schema_says() -> None:
    node = {"minimum": 0.0, "exclusiveMinimum": True, "maximum": 1.0, "minLength": 1, "maxLength": 8,
            "enum": ["a", "b"], "nullable": True, "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}
    assert gen_crd_docs.bounds(node, required=True) == (
        "required; one of `a`, `b`; (0.0, 1.0]; 1-8 characters; may be null; immutable")
    assert gen_crd_docs.bounds({"maximum": 5, "exclusiveMaximum": True}, required=False) == "< 5"
    # A pipe inside a cell (a CEL `||`, a regex alternative) would split the table row.
    assert gen_crd_docs.cell("a || b") == "a \\|\\| b"
    assert gen_crd_docs.code("") == '`""`'


def test_stale_page_is_reported(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(gen_crd_docs, "DOCS", tmp_path)
    monkeypatch.setattr(sys, "argv", ["gen_crd_docs.py", "--check"])
    for kind in crd.KINDS:
        (tmp_path / f"{kind.singular}.md").write_text(gen_crd_docs.render(kind))
    assert gen_crd_docs.main() == 0
    page = tmp_path / f"{crd.KINDS[0].singular}.md"
    page.write_text(page.read_text().replace("| integer |", "| string |", 1))
    assert gen_crd_docs.main() == 1
