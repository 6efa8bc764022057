"""Where source rows come from: a Hub dataset, local files, an object store, or our bundled sets.

Every source yields plain dicts. A line of a JSONL file that is not a JSON object is not fatal: it
is yielded as `MalformedRow` so the caller counts it with the other dropped rows.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import storage
from ..storage import sha256_file

BUNDLED_PREFIX = "bundled:"
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")


class SourceError(RuntimeError):
    """A source that cannot be read at all (missing, unknown format, refused by the Hub)."""


@dataclass(frozen=True)
class MalformedRow:
    line: int
    error: str


def bundled_dir() -> Path:
    spec = importlib.util.find_spec("kubetune_jobs")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "datasets"


def _local_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in LOCAL_SUFFIXES and p.is_file())
        if not files:
            raise SourceError(f"{path} holds no {', '.join(LOCAL_SUFFIXES)} files")
        return files
    if path.suffix not in LOCAL_SUFFIXES:
        raise SourceError(f"{path}: unsupported file type (expected {', '.join(LOCAL_SUFFIXES)})")
    return [path]


def _read_jsonl(path: Path) -> Iterator[dict | MalformedRow]:
    loads = json.loads
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = loads(line)
            except json.JSONDecodeError as exc:
                yield MalformedRow(number, exc.msg)
                continue
            yield row if isinstance(row, dict) else MalformedRow(number, "not a JSON object")


def _read_file(path: Path) -> Iterator[dict | MalformedRow]:
    if path.suffix == ".jsonl":
        yield from _read_jsonl(path)
    elif path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            # Many ".json" datasets are really JSON Lines.
            if exc.msg == "Extra data":
                yield from _read_jsonl(path)
                return
            raise SourceError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        if isinstance(data, dict):
            data = next((v for v in data.values() if isinstance(v, list)), None)
        if not isinstance(data, list):
            raise SourceError(f"{path}: expected a JSON list of rows")
        for number, row in enumerate(data, 1):
            yield row if isinstance(row, dict) else MalformedRow(number, "not a JSON object")
    else:
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()


@dataclass
class Source:
    """A resolved source: its rows and a fingerprint that changes whenever its content can have."""

    ref: str
    split: str | None = None

    def __post_init__(self) -> None:
        self._download: tempfile.TemporaryDirectory | None = None

    def _files(self) -> list[Path] | None:
        if storage.is_remote(self.ref):
            return [self._fetch_remote()]
        if self.ref.startswith(BUNDLED_PREFIX):
            name = self.ref[len(BUNDLED_PREFIX):]
            path = bundled_dir() / f"{name}.jsonl"
            if not path.exists():
                known = sorted(p.stem for p in bundled_dir().glob("*.jsonl"))
                raise SourceError(f"unknown bundled dataset {name!r}; known: {', '.join(known) or 'none'}")
            return [path]
        path = Path(self.ref).expanduser()
        if path.exists():
            return _local_files(path)
        if self.ref.startswith((".", "/", "~")) or self.ref.endswith(LOCAL_SUFFIXES):
            raise SourceError(f"dataset file {self.ref} does not exist")
        return None

    def _fetch_remote(self) -> Path:
        """Download an object-store source once; later reads use the local copy."""
        name = self.ref.rstrip("/").rsplit("/", 1)[-1]
        if not name.endswith(LOCAL_SUFFIXES):
            raise SourceError(f"{self.ref}: name an object ending in {', '.join(LOCAL_SUFFIXES)}")
        if self._download is None:
            download = tempfile.TemporaryDirectory(prefix="kubetune-source-")
            try:
                (Path(download.name) / name).write_bytes(storage.location(self.ref).read_bytes())
            except FileNotFoundError as exc:
                download.cleanup()
                raise SourceError(str(exc)) from exc
            self._download = download
        return Path(self._download.name) / name

    def fingerprint(self) -> str:
        files = self._files()
        if files is not None:
            return ",".join(sha256_file(p) for p in files)
        return f"{self.ref}@{self.split}"

    def rows(self) -> Iterator[dict | MalformedRow]:
        files = self._files()
        if files is None:
            yield from self._hub_rows()
            return
        for path in files:
            yield from _read_file(path)

    def _hub_rows(self) -> Iterator[dict | MalformedRow]:
        import datasets

        try:
            ds = datasets.load_dataset(self.ref, split=self.split, token=os.environ.get("HF_TOKEN") or None)
        except Exception as exc:  # noqa: BLE001 - the Hub raises many types; the job reports one line
            raise SourceError(f"cannot load Hub dataset {self.ref!r} split {self.split!r}: {exc}") from exc
        yield from ds
