"""Where artifacts live, written and read whole: the jobs' side of `contract.locations`.

A location is written as a path (`/data/run`, `file:///data/run`) or `s3://bucket/prefix`. The S3
endpoint and credentials are never flags, so they stay out of command lines, pod specs and logs: a
job reads them from its environment (`contract.env`: KUBETUNE_S3_ENDPOINT, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY), the operator binds each location to its resource's store (`location(uri, access)`);
both resolve through `contract.store.resolve`. Reading, listing and deleting, and the retries of
transient failures (`contract.retries`), are the contract's (the operator reads with them); this adds
writing and whole directories.

Directories are published whole or not at all: files go up first and a `_COMPLETE` manifest (every
file with its size and sha256) goes last; readers treat a directory without it as absent. Local
directories are built under a temporary name and renamed into place. The manifest comes from the
store, so nothing in it is trusted: every name must be a plain relative path that stays under the
destination, sizes and digests must be well-formed, and each file fetched must match its entry, from
a local directory as from S3 (a symbolic link that leaves the directory is refused, never followed).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .contract import env as names
from .contract import locations, retries
from .contract.layout import COMPLETE_MARKER, COMPLETE_MARKER_MAX_BYTES
from .contract.locations import TooLarge, is_remote
from .contract.retries import MAX_BACKOFF_S, StorageError, backoff, budget, retry_budget
from .contract.store import StoreAccess

__all__ = ["COMPLETE_MARKER", "MAX_BACKOFF_S", "FileEntry", "LocalLocation", "Location", "ManifestError",
           "ReadOnlyError", "ReadOnlyLocation", "S3Location", "StorageError", "TooLarge", "backoff", "is_remote",
           "location", "parse_manifest", "retry_budget", "sha256_bytes", "sha256_file"]

DEFAULT_RETRY_BUDGET_S = retries.DEFAULT_RETRY_BUDGET_S
CHECK_RETRY_BUDGET_S = 30.0
# A manifest naming more than this is refused before anything is fetched (KUBETUNE_MAX_DIR_BYTES overrides):
# far above any model this project trains (a 70B model in bf16 is ~140 GB), far below a disk-filling lie.
DEFAULT_MAX_DIR_BYTES = 2 * 2**40
MAX_DIR_FILES = 100_000
MAX_PATH_CHARS = 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DRIVE = re.compile(r"[A-Za-z]:")


class ManifestError(StorageError):
    """A `_COMPLETE` manifest that cannot be trusted; the message names the directory and the bad entry."""


class FileEntry(NamedTuple):
    size: int
    sha256: str


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _path_problem(rel: str) -> str | None:
    """Why `rel` is not a plain relative POSIX path that stays under the directory it is joined to."""
    if not rel:
        return "is empty"
    if len(rel) > MAX_PATH_CHARS:
        return f"is longer than {MAX_PATH_CHARS} characters"
    if any(ord(c) < 32 or c == "\x7f" for c in rel):
        return "contains a control character"
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    if "\\" in rel:
        return "contains a backslash"
    if rel.startswith("/"):
        return "is absolute"
    if _DRIVE.match(rel):
        return "starts with a drive letter"
    parts = rel.split("/")
    if "" in parts:
        return "has an empty component"
    if "." in parts or ".." in parts:
        return "has a '.' or '..' component"
    if parts[-1] == COMPLETE_MARKER:
        return f"names a file called {COMPLETE_MARKER}"
    return None


def max_dir_bytes() -> int:
    return int(os.environ.get(names.MAX_DIR_BYTES) or DEFAULT_MAX_DIR_BYTES)


def parse_manifest(data: bytes, where: str) -> dict[str, FileEntry]:
    """The entries of a `_COMPLETE` manifest read from `where`, checked; ManifestError names the first bad one."""
    def refuse(why: str) -> ManifestError:
        return ManifestError(f"{where}: refusing the directory: its {COMPLETE_MARKER} manifest {why}")

    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise refuse(f"is not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise refuse("is not a JSON object")
    if len(raw) > MAX_DIR_FILES:
        raise refuse(f"lists {len(raw)} files (at most {MAX_DIR_FILES})")
    entries: dict[str, FileEntry] = {}
    total, limit = 0, max_dir_bytes()
    for rel, meta in raw.items():
        problem = _path_problem(rel)
        if problem:
            raise refuse(f"entry {rel!r} {problem}")
        if not isinstance(meta, dict):
            raise refuse(f"entry {rel!r} is not an object")
        size, digest = meta.get("size"), meta.get("sha256")
        if type(size) is not int or size < 0:
            raise refuse(f"entry {rel!r} has size {str(size)[:40]} (a non-negative integer is required)")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise refuse(f"entry {rel!r} has sha256 {str(digest)[:80]!r} (64 lower-case hex digits required)")
        total += size
        if total > limit:
            raise refuse(f"adds up to more than {limit} bytes (KUBETUNE_MAX_DIR_BYTES) at entry {rel!r}")
        entries[rel] = FileEntry(size, digest)
    dirs = {"/".join(rel.split("/")[:i]) for rel in entries for i in range(1, rel.count("/") + 1)}
    clash = sorted(dirs & entries.keys())
    if clash:
        raise refuse(f"entry {clash[0]!r} is both a file and a directory")
    return entries


def _inside(root: Path, rel: str) -> Path:
    """`root / rel`, refusing it if a symbolic link already on disk would take it outside `root` (or loops)."""
    dest = root / rel
    try:
        inside = dest.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError) as exc:  # a loop of links: RuntimeError before Python 3.13, OSError after
        raise ManifestError(f"{root}: refusing {rel!r}: a symbolic link on disk loops ({exc})") from exc
    if not inside:
        raise ManifestError(f"{root}: refusing {rel!r}: a symbolic link on disk takes it outside the directory")
    return dest


def _matches(path: Path, entry: FileEntry) -> bool:
    return path.is_file() and path.stat().st_size == entry.size and sha256_file(path) == entry.sha256


def _dir_manifest(root: Path) -> dict[str, dict[str, object]]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != COMPLETE_MARKER)
    return {
        p.relative_to(root).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)} for p in files
    }


def _check_space(local: Path, needed: int, uri: str) -> None:
    probe = local
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed > free:
        raise StorageError(f"{uri}: needs {needed} bytes at {local}, only {free} free")


class Location(locations.Location):
    """A location the jobs write to as well as read."""

    def write_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    def upload_dir(self, local: Path) -> None:
        """Publish a local directory here, whole: files first, the `_COMPLETE` manifest last."""
        raise NotImplementedError

    def download_dir(self, local: Path, *, copy: bool = False) -> Path:
        """Copy a complete directory to `local` and return it; a local store returns its own path unless
        `copy`. Every file is checked against the manifest; ManifestError or StorageError say which not."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise StorageError now if the store cannot be used, before any work is done."""

    def manifest(self) -> dict[str, FileEntry]:
        """The checked `_COMPLETE` manifest of this directory; FileNotFoundError when it is not complete."""
        try:
            data = self.child(COMPLETE_MARKER).read_bytes(limit=COMPLETE_MARKER_MAX_BYTES)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{self.uri} is not a complete directory (no {COMPLETE_MARKER} marker)") from exc
        return parse_manifest(data, self.uri)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def write_json(self, obj: object) -> None:
        self.write_bytes((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))

    def _fetch_dir(self, local: Path, entries: dict[str, FileEntry], fetch: Callable[[str, Path], None]) -> Path:
        """Every file of `entries` (this directory's checked manifest) put at `local` by `fetch(name, dest)` and
        checked against its entry; files already there and matching are kept."""
        local = Path(local)
        targets = {rel: _inside(local, rel) for rel in entries}
        missing = {rel: e for rel, e in entries.items() if not _matches(targets[rel], e)}
        _check_space(local, sum(e.size for e in missing.values()), self.uri)
        for rel, entry in missing.items():
            dest = targets[rel]
            dest.parent.mkdir(parents=True, exist_ok=True)
            fetch(rel, dest)
            if not _matches(dest, entry):
                got = dest.stat().st_size if dest.is_file() else None
                dest.unlink(missing_ok=True)
                raise StorageError(f"{self.uri}: {rel!r} does not match its {COMPLETE_MARKER} entry "
                                   f"({got} bytes, expected {entry.size} with sha256 {entry.sha256[:12]}...); "
                                   "the copied file was removed")
        return local


class LocalLocation(locations.LocalLocation, Location):
    def write_bytes(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def upload_dir(self, local: Path) -> None:
        local = Path(local)
        if local.resolve() == self.path.resolve():
            (self.path / COMPLETE_MARKER).write_text(json.dumps(_dir_manifest(self.path), indent=1))
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}."))
        try:
            shutil.copytree(local, tmp, dirs_exist_ok=True)
            (tmp / COMPLETE_MARKER).write_text(json.dumps(_dir_manifest(tmp), indent=1))
            if self.path.exists():
                shutil.rmtree(self.path)
            os.replace(tmp, self.path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _source(self, rel: str) -> Path:
        """The regular file `rel` names in this directory. A symbolic link is refused, never followed nor
        copied as a link: one that leaves the directory or loops names itself so."""
        src = _inside(self.path, rel)
        if src.is_symlink() or not src.is_file():
            raise ManifestError(f"{self.uri}: {rel!r} is listed in {COMPLETE_MARKER} but is not a regular file")
        return src

    def download_dir(self, local: Path, *, copy: bool = False) -> Path:
        entries = self.manifest()
        sources = {rel: self._source(rel) for rel in entries}  # every one, before anything is written
        if copy:
            # Copied as S3 downloads are: every file hashed against its entry on the way in.
            return self._fetch_dir(local, entries, lambda rel, dest: shutil.copyfile(sources[rel], dest))
        # Used in place, hashing every file of a local model at each load would cost minutes; a symbolic
        # link out of the store or a truncated file is what a local directory can really get wrong.
        for rel, entry in entries.items():
            if sources[rel].stat().st_size != entry.size:
                raise StorageError(f"{self.uri}: {rel!r} has {sources[rel].stat().st_size} bytes, its manifest "
                                   f"says {entry.size}")
        return self.path


class S3Location(locations.S3Location, Location):
    def check(self) -> None:
        # A store that cannot be reached before any work is done is more often misconfigured than
        # restarting: fail within CHECK_RETRY_BUDGET_S, and keep the full budget for later operations.
        with retry_budget(min(budget(), CHECK_RETRY_BUDGET_S)):
            found = self._do("reach bucket of", lambda: self.client.bucket_exists(self.bucket))
        if not found:
            raise StorageError(f"bucket {self.bucket!r} does not exist at {self.endpoint}")

    def write_bytes(self, data: bytes) -> None:
        self._do("write", lambda: self.client.put_object(self.bucket, self.key, io.BytesIO(data), len(data)))

    def upload_dir(self, local: Path) -> None:
        local = Path(local)
        manifest = _dir_manifest(local)
        # A stale marker from an earlier publish must not vouch for a half-replaced directory.
        self._do("unmark", lambda: self.client.remove_object(self.bucket, self.child(COMPLETE_MARKER).key))
        for rel in manifest:
            target = self.child(rel)
            self._do("upload", lambda t=target, r=rel: self.client.fput_object(self.bucket, t.key, str(local / r)))
        self.child(COMPLETE_MARKER).write_bytes(json.dumps(manifest, indent=1).encode())

    def download_dir(self, local: Path, *, copy: bool = False) -> Path:
        return self._fetch_dir(local, self.manifest(), lambda rel, dest: self._do(
            "download", lambda: self.client.fget_object(self.bucket, self.child(rel).key, str(dest))))


class ReadOnlyError(RuntimeError):
    """A write through a `ReadOnlyLocation`: a bug (not a store failure, so no retry or warning hides it)."""


@dataclass
class ReadOnlyLocation(Location):
    """Another location, for reading only: what every rank but rank 0 of a distributed step sees, so that
    one process alone writes the stage's outputs. A write raises ReadOnlyError naming `who`."""

    inner: Location
    who: str

    @property
    def uri(self) -> str:  # type: ignore[override]
        return self.inner.uri

    def child(self, *parts: str) -> ReadOnlyLocation:
        return ReadOnlyLocation(self.inner.child(*parts), self.who)

    def exists(self) -> bool:
        return self.inner.exists()

    def read_bytes(self, limit: int | None = None) -> bytes:
        return self.inner.read_bytes(limit)

    def list(self) -> list[str]:
        return self.inner.list()

    def download_dir(self, local: Path, *, copy: bool = False) -> Path:
        return self.inner.download_dir(local, copy=copy)

    def check(self) -> None:
        self.inner.check()

    def _refuse(self, what: str) -> ReadOnlyError:
        return ReadOnlyError(f"{self.who} may not {what} {self.inner.uri}: only rank 0 writes to the store")

    def write_bytes(self, data: bytes) -> None:
        raise self._refuse("write")

    def delete(self) -> None:
        raise self._refuse("delete")

    def upload_dir(self, local: Path) -> None:
        raise self._refuse("upload to")


def location(uri: str | Path, access: StoreAccess | None = None) -> Location:
    """Parse `s3://bucket/key`, `file:///path` or a plain path into a Location; an S3 location talks to
    `access` when given, else to the store this process's environment names."""
    return locations.location_of(uri, access, LocalLocation, S3Location)
