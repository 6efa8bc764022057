"""Where source rows come from: a Hub dataset, local files, an object store, or our bundled sets.

Every source yields plain dicts. A line of a JSONL file that cannot be a row is not fatal: it is
yielded as `MalformedRow` with a stable reason (`strict_json`'s, `invalid_utf8`, `row_too_large`)
so the caller counts it with the other dropped rows. Files are read as bytes and decoded line by
line, so one undecodable byte costs one row; a line longer than the row size limit is skipped
without being held in memory.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import storage
from ..storage import sha256_file
from . import strict_json

BUNDLED_PREFIX = "bundled:"
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")
# xlam rows are ~2-5 KB and long UltraChat conversations ~50 KB; a row far beyond that is not data
# we can train on (prepare --max-row-bytes overrides).
MAX_ROW_BYTES = 1 << 20
_SKIP_CHUNK = 1 << 20


class SourceError(RuntimeError):
    """A source that cannot be read at all (missing, unknown format, refused by the Hub)."""


@dataclass(frozen=True)
class MalformedRow:
    line: int
    error: str
    reason: str = "malformed_json"


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


def _read_jsonl(path: Path, max_row_bytes: int = MAX_ROW_BYTES) -> Iterator[dict | MalformedRow]:
    with open(path, "rb") as fh:
        number = 0
        while line := fh.readline(max_row_bytes + 1):
            number += 1
            if len(line) > max_row_bytes and not line.endswith(b"\n"):
                while (rest := fh.readline(_SKIP_CHUNK)) and not rest.endswith(b"\n"):
                    pass
                yield MalformedRow(number, f"longer than {max_row_bytes} bytes", "row_too_large")
                continue
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]  # a UTF-8 byte order mark, as some editors write
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield MalformedRow(number, f"byte {exc.start} is not UTF-8 ({exc.reason})", "invalid_utf8")
                continue
            try:
                row = strict_json.loads(text)
            except strict_json.InvalidJSON as exc:
                yield MalformedRow(number, exc.detail, exc.reason)
                continue
            yield row if isinstance(row, dict) else MalformedRow(number, "not a JSON object")


def _read_file(path: Path, max_row_bytes: int) -> Iterator[dict | MalformedRow]:
    if path.suffix == ".jsonl":
        yield from _read_jsonl(path, max_row_bytes)
    elif path.suffix == ".json":
        try:
            data = json.loads(path.read_bytes().decode("utf-8", errors="surrogateescape"))
        except json.JSONDecodeError as exc:
            # Many ".json" datasets are really JSON Lines.
            if exc.msg == "Extra data":
                yield from _read_jsonl(path, max_row_bytes)
                return
            raise SourceError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        except (RecursionError, ValueError) as exc:
            raise SourceError(f"{path}: not readable as JSON ({str(exc)[:100]})") from exc
        if isinstance(data, dict):
            data = next((v for v in data.values() if isinstance(v, list)), None)
        if not isinstance(data, list):
            raise SourceError(f"{path}: expected a JSON list of rows")
        for number, row in enumerate(data, 1):
            if not isinstance(row, dict):
                yield MalformedRow(number, "not a JSON object")
                continue
            try:
                size = strict_json.check(row)
            except strict_json.InvalidJSON as exc:
                # Undecodable bytes were let through as lone surrogates, so this row alone is dropped.
                escaped = exc.reason == "lone_surrogate" and re.match(r"U\+DC[89A-F]", exc.detail)
                reason = "invalid_utf8" if escaped else exc.reason
                yield MalformedRow(number, exc.detail, reason)
                continue
            if size > max_row_bytes:
                yield MalformedRow(number, f"longer than {max_row_bytes} bytes", "row_too_large")
                continue
            yield row
    else:
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()


@dataclass
class Source:
    """A resolved source: its rows and a fingerprint that changes whenever its content can have."""

    ref: str
    split: str | None = None
    max_row_bytes: int = MAX_ROW_BYTES

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

    @property
    def strict(self) -> bool:
        """Whether every row is checked as it is read (JSON files), so what converters build from it is too.
        Rows from Parquet or the Hub are Python values that prepare checks after conversion."""
        files = self._files()
        return files is not None and all(p.suffix in (".jsonl", ".json") for p in files)

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
            yield from _read_file(path, self.max_row_bytes)

    def _hub_rows(self) -> Iterator[dict | MalformedRow]:
        import datasets

        try:
            ds = datasets.load_dataset(self.ref, split=self.split, token=os.environ.get("HF_TOKEN") or None)
        except Exception as exc:  # noqa: BLE001 - the Hub raises many types; the job reports one line
            raise SourceError(f"cannot load Hub dataset {self.ref!r} split {self.split!r}: {exc}") from exc
        yield from ds
