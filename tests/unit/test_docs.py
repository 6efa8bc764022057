"""The documentation holds together: every relative link reaches a file of the repository or a heading of
it (GitHub's anchors), the commands README gives are the ones CI and the Makefile run, the resources shown
inline are ones `kubetune validate` accepts, and no page reads like a lab diary or names a developer's
machine."""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
KINDS = ("FineTuneRun", "ModelServe")


def markdown_files() -> list[Path]:
    """Every markdown file of the repository (not inside hidden folders: .git, virtual environments)."""
    return sorted(p for p in ROOT.rglob("*.md")
                  if not any(part.startswith(".") for part in p.relative_to(ROOT).parts[:-1]))


def pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


@cache
def tokens(path: Path) -> list:
    return MarkdownIt("commonmark").enable("table").parse(path.read_text())


def inline_children(path: Path):
    for token in tokens(path):
        if token.type == "inline":
            yield from token.children or []


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation and symbols dropped, each space a hyphen."""
    kept = "".join(c for c in text.lower()
                   if c in "-_ " or unicodedata.category(c)[0] in "LNM")
    return kept.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The anchors GitHub gives the headings of a markdown file (a repeated heading gets -1, -2...)."""
    found: list[str] = []
    items = tokens(path)
    for i, token in enumerate(items):
        if token.type != "heading_open":
            continue
        text = "".join(c.content for c in items[i + 1].children or [] if c.type in ("text", "code_inline"))
        base = slug(text)
        name, n = base, 0
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.append(name)
    return frozenset(found)


def links(path: Path) -> list[str]:
    out = []
    for child in inline_children(path):
        if child.type == "link_open":
            out.append(child.attrs["href"])
        elif child.type == "image":
            out.append(child.attrs["src"])
    return out


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for href in links(path):
        parts = urlsplit(href)
        if parts.scheme or parts.netloc:
            continue  # a web address: not ours to resolve offline
        target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
        if not target.is_relative_to(root) or not target.exists():
            problems.append(f"{href}: no such file in the repository")
            continue
        fragment = unquote(parts.fragment)
        if fragment:
            if target.suffix != ".md":
                problems.append(f"{href}: an anchor into a file that is not markdown")
            elif fragment not in anchors(target):
                problems.append(f"{href}: {target.relative_to(root)} has no heading with anchor #{fragment}")
    return problems


def prose(path: Path) -> str:
    """The page's running text: what is read as words, not code spans or code blocks."""
    return " ".join(c.content for c in inline_children(path) if c.type == "text")


# The diary sense: "third session", "this session's machine". A pytest session-scoped fixture is named so.
DIARY = re.compile(r"\bsessions?\b(?!-scoped)", re.IGNORECASE)
# A path of one machine: a developer's checkout or scratch space, in a command or in prose alike.
PRIVATE_PATH = re.compile(r"(?<![\w.~-])/(?:work|tmp|home|Users)/[\w.-]")


def fenced(path: Path, language: str) -> list[str]:
    return [t.content for t in tokens(path) if t.type == "fence" and t.info.strip() == language]


def test_the_checks_see_what_they_look_for(tmp_path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Try it: `make demo`!\n\n## Café & co\n\n## Try it: `make demo`!\n\n"
                    "In the third session we ran `pytest` (a session-scoped fixture).\n\n"
                    "```bash\ngit clone /work/main /tmp/fresh3\n```\n\n"
                    "[a](#café--co) [b](page.md#nowhere) [c](gone.md) [d](page.md#try-it-make-demo-1) [e](../x.md)\n")
    assert anchors(page) == {"try-it-make-demo", "café--co", "try-it-make-demo-1"}
    assert DIARY.findall(prose(page)) == ["session"]
    assert PRIVATE_PATH.findall(page.read_text()) == ["/work/m", "/tmp/f"]
    assert broken_links(page, root=tmp_path) == [
        "page.md#nowhere: page.md has no heading with anchor #nowhere", "gone.md: no such file in the repository",
        "../x.md: no such file in the repository"]


@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert not broken_links(path), broken_links(path)


def test_every_markdown_file_links_within_the_repository() -> None:
    problems = {str(p.relative_to(ROOT)): broken_links(p) for p in markdown_files()}
    assert not {k: v for k, v in problems.items() if v}


def test_no_page_reads_like_a_diary_or_names_a_machine() -> None:
    found = {}
    for path in markdown_files():
        words = DIARY.findall(prose(path))
        paths = PRIVATE_PATH.findall(path.read_text())
        if words or paths:
            found[str(path.relative_to(ROOT))] = (len(words), sorted(set(paths)))
    assert not found, f"'session' in prose / private paths: {found}"


def test_docs_are_linked_from_the_readme() -> None:
    linked = {(README.parent / urlsplit(h).path).resolve() for h in links(README) if not urlsplit(h).scheme}
    orphans = [p.relative_to(ROOT) for p in sorted((ROOT / "docs").rglob("*.md")) if p.resolve() not in linked]
    assert not orphans, f"docs pages README does not link: {orphans}"


def test_readme_gives_the_command_ci_runs() -> None:
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert ci[-1] == "make test", ci
    text = README.read_text()
    assert "make test" in text and "make demo" in text
    assert len(README.read_text().splitlines()) <= 250, "README is the front page: keep it short, move detail to docs/"


def test_every_make_command_in_the_docs_is_a_makefile_target() -> None:
    named = set()
    for path in pages():
        code = [t.content for t in tokens(path) if t.type in ("fence", "code_block")]
        code += [c.content for c in inline_children(path) if c.type == "code_inline"]
        for block in code:
            named.update(re.findall(r"(?:^|[\s;&(])make\s+((?:[A-Za-z_][\w.-]*|\.[\w./-]+))", block))
    assert {"demo", "serve", "test"} <= named
    for target in sorted(named):
        dry = subprocess.run(["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin", "MAKEFLAGS": ""})
        assert "No rule to make target" not in dry.stderr, f"make {target}: {dry.stderr.strip()}"


def test_inline_resources_are_valid(tmp_path) -> None:
    """The FineTuneRun and ModelServe README shows are accepted by `kubetune validate` (what the operator checks)."""
    written, kinds = [], []
    for path in pages():
        for i, block in enumerate(fenced(path, "yaml")):
            kind = re.search(r"^kind:\s*(\S+)", block, re.MULTILINE)
            if kind and kind.group(1) in KINDS:
                target = tmp_path / f"{path.stem}-{i}.yaml"
                target.write_text(block)
                written.append(target)
                kinds.append((path, kind.group(1)))
    assert {k for p, k in kinds if p == README} == set(KINDS), "README shows a FineTuneRun and a ModelServe"
    out = subprocess.run([sys.executable, "-m", "kubetune_local.cli", "validate", *map(str, written)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("is valid") == len(written), out.stdout
