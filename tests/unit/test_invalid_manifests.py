"""A corpus of invalid manifests (tests/fixtures/invalid-manifests/, the expected field and a word of the message
for each in its expected.yaml) through `kubetune validate` and through the operator's own checks; and a corpus
of valid ones, with dotted Secret names and every placement field, that both must accept.

`kubetune validate` runs as a subprocess with a timeout, so a hang (a 100 kB key, 10,000 nested lists) fails the
test instead of stalling it, and a traceback anywhere is a failure: once over the whole corpus (one process:
each import costs a second) and alone for the inputs that crashed or hung it before. Each file's own exit code
and message come from the same `main()` called in-process. tests/integration/test_operator_kopf.py creates the
spec-level cases in kopf's emulator and expects the operator's condition to name the same field.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetune_local import cli
from kubetune_local import run as local_run
from kubetune_local import serve as local_serve
from kubetune_operator.apitypes import SpecError, read_documents
from kubetune_operator.finetunerun import api as ftr_api
from kubetune_operator.finetunerun import validation as ftr_validation
from kubetune_operator.modelserve import api as ms_api
from kubetune_operator.modelserve import validation as ms_validation

ROOT = Path(__file__).resolve().parents[2]
INVALID = ROOT / "tests" / "fixtures" / "invalid-manifests"
VALID = ROOT / "tests" / "fixtures" / "valid-manifests"
EXAMPLES = ROOT / "manifests" / "examples"
EXPECTED: dict[str, list[str]] = yaml.safe_load((INVALID / "expected.yaml").read_text())
TIMEOUT = 60  # seconds; the whole corpus takes a few: only a hang comes near it
KINDS = {ftr_api.KIND: (ftr_api, ftr_validation), ms_api.KIND: (ms_api, ms_validation)}
# Fields of a document, which the operator itself checks (the rest is the file's: YAML, kind, documents).
DOCUMENT_FIELDS = ("spec", "metadata", "apiVersion")
# What printed a traceback or hung `kubetune validate` before: each also runs alone.
ALONE = ("ftr-markup-close-key.yaml", "ftr-markup-red-key.yaml", "ftr-long-key.yaml", "ftr-deep-nesting.yaml",
         "ms-deep-nesting.yaml", "ftr-invalid-utf8.yaml", "ftr-yaml-syntax.yaml", "kind-list.yaml",
         "ms-billion-laughs.yaml", "ftr-gpus-string.yaml")


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    """The real command line, as a user runs it (this checkout's code first on the path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT / "jobs"),
                                                        os.environ.get("PYTHONPATH", "")])}
    try:
        return subprocess.run([sys.executable, "-m", "kubetune_local.cli", "validate", *map(str, paths)],
                              env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"kubetune validate {' '.join(p.name for p in paths)[:200]} did not finish within {TIMEOUT} s")


def invalid_files() -> list[Path]:
    return sorted(p for p in INVALID.glob("*.yaml") if p.name != "expected.yaml")


def valid_files() -> list[Path]:
    return sorted(VALID.glob("*.yaml")) + sorted(EXAMPLES.glob("*.yaml"))


def lines_of(output: str, path: Path) -> list[str]:
    return [line for line in output.splitlines()
            if line.startswith(f"invalid manifest {path}: ") or line.startswith(f"{path}: ")]


def check(name: str, text: str) -> str | None:
    """Why `text` (what was printed about one file) is not the expected refusal; None when it is."""
    field, word = EXPECTED[name]
    if not text.startswith(f"invalid manifest {INVALID / name}: ") and f"\ninvalid manifest {INVALID / name}: " \
            not in text:
        return f"{name}: not refused: {text[:300]!r}"
    if f"{field}:" not in text or word.lower() not in text.lower():
        return f"{name}: expected {field!r} and {word!r} in {text[:600]!r}"
    return None


def test_the_corpus_is_large_and_every_file_has_an_expectation() -> None:
    files = {p.name for p in INVALID.iterdir()} - {"expected.yaml"}
    assert len(EXPECTED) >= 60
    assert files == set(EXPECTED), (files ^ set(EXPECTED))
    heads = " ".join((INVALID / f).read_bytes()[:400].decode("utf-8", "replace") for f in files)
    assert heads.count("kind: FineTuneRun") >= 20 and heads.count("kind: ModelServe") >= 20


def test_the_command_refuses_the_whole_corpus_naming_each_field() -> None:
    files = invalid_files()
    result = validate(*files)
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out[-3000:]
    assert result.returncode == 2, out[-3000:]
    problems = [check(f.name, "\n".join(lines_of(result.stdout, f))) for f in files]
    assert [p for p in problems if p] == []
    attributed = sum(len(lines_of(result.stdout, f)) for f in files)
    assert attributed == len(result.stdout.splitlines()), "a line of output that names no file"
    assert max(map(len, result.stdout.splitlines())) < 5000, "a message is one line, whatever the input"


@pytest.fixture(scope="module")
def alone() -> dict[str, subprocess.CompletedProcess[str] | BaseException]:
    def one(name: str) -> subprocess.CompletedProcess[str] | BaseException:
        try:
            return validate(INVALID / name)
        except BaseException as exc:  # noqa: BLE001 (pytest.fail's: raised again by the test of that file)
            return exc

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(ALONE, pool.map(one, ALONE), strict=True))


@pytest.mark.parametrize("name", ALONE)
def test_what_crashed_or_hung_the_command_is_refused_alone(name: str, alone: dict) -> None:
    result = alone[name]
    if isinstance(result, BaseException):
        raise result
    out = result.stdout + result.stderr
    assert "Traceback" not in out and result.returncode == 2, (result.returncode, out[-3000:])
    assert check(name, out) is None, check(name, out)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_manifest_exits_2_naming_the_field(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(INVALID / name)]) == 2
    out = capsys.readouterr().out
    assert check(name, out) is None, check(name, out)


@pytest.mark.parametrize(("command", "name"), [("run", "ftr-namespace-traversal.yaml"),
                                               ("serve", "ms-namespace-traversal.yaml")])
def test_a_local_run_refuses_a_namespace_that_leaves_the_store(command: str, name: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`kubetune run` and `kubetune serve` name directories after the namespace: `../../etc` must stop them first."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    assert cli.main([command, str(INVALID / name), "--store", str(work / "store")]) == 2
    assert "metadata.namespace:" in capsys.readouterr().out
    assert [p for p in tmp_path.rglob("*") if p != work and p not in work.parents] == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_run_and_serve_read_a_file_as_validate_does(name: str) -> None:
    """`kubetune run` and `kubetune serve` load their manifest through the loader `kubetune validate` uses: every
    document of the file is checked, none skipped, so each refuses the whole corpus naming the same field."""
    field, word = EXPECTED[name]
    for load in (local_run.load, local_serve.load):
        with pytest.raises(SpecError) as refused:
            load(INVALID / name)
        message = str(refused.value)
        assert f"{field}:" in message and word.lower() in message.lower(), (load.__module__, field, word, message)


@pytest.mark.parametrize(("command", "name", "field"), [
    ("serve", "ms-second-document-garbage.yaml", "document 2: kind:"),
    ("run", "two-documents-second-invalid.yaml", "document 2: spec.replicas:"),
    ("serve", "two-documents-second-invalid.yaml", "document 2: spec.replicas:"),
])
def test_run_and_serve_refuse_a_file_with_a_bad_document_beside_theirs(command: str, name: str, field: str,
                                                                       tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The document a command runs is valid, another in the file is not: `kubetune validate` refuses the file,
    and so does the command (it used to run its own document and skip the rest)."""
    assert cli.main([command, str(INVALID / name), "--store", str(tmp_path / "store")]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"invalid manifest {INVALID / name}: ") and field in out, out
    assert not (tmp_path / "store").exists()


def operator_messages(path: Path) -> list[str] | None:
    """What the operator's checks say about each document of a file it could be given (None: not one)."""
    try:
        docs = read_documents(path)
    except SpecError:
        return None
    found = [d for d in docs if isinstance(d, dict) and isinstance(d.get("kind"), str) and d["kind"] in KINDS]
    if not found:
        return None
    messages = []
    for doc in found:
        api, validation = KINDS[doc["kind"]]
        try:
            parsed = api.parse_manifest(doc)
        except SpecError as exc:
            messages.append(str(exc))
            continue
        messages.append("; ".join(validation.problems(parsed.spec)))
        if isinstance(doc.get("spec"), dict):
            # What the FineTuneRun handler parses: the spec alone (the field paths must be the same).
            try:
                api.parse_spec(doc["spec"])
            except SpecError as exc:
                messages.append(str(exc))
    return messages


@pytest.mark.parametrize("name", sorted(n for n, (field, _) in EXPECTED.items() if field.startswith(DOCUMENT_FIELDS)))
def test_the_operators_checks_name_the_same_field(name: str) -> None:
    field, word = EXPECTED[name]
    try:
        read_documents(INVALID / name)
    except SpecError as exc:
        # Refused as YAML (aliases that multiply it): the operator is given JSON an API server parsed, never this
        # YAML; the loader every command shares names the field itself.
        assert f" {field}: " in str(exc) and word.lower() in str(exc).lower(), (field, word, str(exc))
        return
    messages = operator_messages(INVALID / name)
    assert messages is not None, f"{name}: no document the operator would be given"
    naming = [m for m in messages if m.startswith(f"{field}:") or f"; {field}:" in m]
    assert naming, (field, messages)
    assert all(word.lower() in m.lower() for m in naming), (word, naming)


def test_the_command_accepts_the_valid_corpus_and_the_examples() -> None:
    files = valid_files()
    result = validate(*files)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in files:
        assert len(lines_of(result.stdout, path)) == len(read_documents(path)) >= 1, path
    assert result.stdout.count(" is valid\n") == len(result.stdout.splitlines())


@pytest.mark.parametrize("path", valid_files(), ids=lambda p: p.name)
def test_the_operators_checks_accept_the_valid_corpus(path: Path) -> None:
    messages = operator_messages(path)
    assert messages and all(m == "" for m in messages), messages


def test_valid_corpus_covers_dotted_secrets_and_placement() -> None:
    docs: list[dict[str, Any]] = [d for p in VALID.glob("*.yaml") for d in read_documents(p)]
    text = yaml.safe_dump(docs)
    for needle in ("hubTokenSecret: hf.token", "credentialsSecret: minio.store-creds", "tolerationSeconds",
                   "nvidia.com/gpu.product", "priorityClassName", "kueueQueue", "@sha256:", "extraArgs"):
        assert needle in text, needle
