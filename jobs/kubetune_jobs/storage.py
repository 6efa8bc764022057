"""Where artifacts live: a local directory or an S3-compatible object store (MinIO), one interface.

A location is written as a path (`/data/run`, `file:///data/run`) or `s3://bucket/prefix`. The S3
endpoint and credentials are never flags, so they stay out of command lines, pod specs and logs: a
job reads them from its environment (`contract.env`: KUBETUNE_S3_ENDPOINT, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY), the operator binds each location to its resource's store (`location(uri, access)`);
both resolve through `contract.store.resolve`. Retries:

    KUBETUNE_S3_RETRY_BUDGET  seconds one operation keeps retrying transient failures (default 300;
                              the first reachability check of a job at most 30)
    KUBETUNE_S3_RETRIES       optional cap on attempts per operation (the operator sets a small one:
                              a controller must not block on a store for minutes)
    KUBETUNE_S3_RETRY_DELAY   first backoff in seconds (default 0.5), doubled per attempt up to 30 s,
                              with jitter so restarted pods do not retry in step

A store that is away for a minute (a MinIO restart, a network blip) must not fail a training run, so
transient failures (connection errors, 5xx, throttling) are retried on a time budget; refusals that a
retry cannot fix (missing key or bucket, bad credentials) fail at once.

Directories are published whole or not at all: files go up first and a `_COMPLETE` manifest (every
file with its size and sha256) goes last; readers treat a directory without it as absent. Local
directories are built under a temporary name and renamed into place. The manifest comes from the
store, so nothing in it is trusted: every name must be a plain relative path that stays under the
destination, sizes and digests must be well-formed, and each downloaded file must match its entry.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import io
import json
import logging
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NamedTuple, TypeVar
from urllib.parse import urlparse

from .contract import env as names
from .contract.layout import COMPLETE_MARKER
from .contract.store import StoreAccess, resolve

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_RETRY_BUDGET_S = 300.0
CHECK_RETRY_BUDGET_S = 30.0
MAX_BACKOFF_S = 30.0
# A manifest lists each file in ~120 bytes: a marker object far larger than MAX_DIR_FILES of them is refused.
MAX_MANIFEST_BYTES = 64 * 2**20
# A manifest naming more than this is refused before anything is fetched (KUBETUNE_MAX_DIR_BYTES overrides):
# far above any model this project trains (a 70B model in bf16 is ~140 GB), far below a disk-filling lie.
DEFAULT_MAX_DIR_BYTES = 2 * 2**40
MAX_DIR_FILES = 100_000
MAX_PATH_CHARS = 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DRIVE = re.compile(r"[A-Za-z]:")


class StorageError(RuntimeError):
    """The store could not be reached or refused an operation; the message names which and why."""


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
    """`root / rel`, refusing it if a symbolic link already on disk would take it outside `root`."""
    dest = root / rel
    if not dest.resolve().is_relative_to(root.resolve()):
        raise ManifestError(f"{root}: refusing {rel!r}: a symbolic link on disk takes it outside the directory")
    return dest


def _within(data: bytes, limit: int | None, uri: str) -> bytes:
    if limit is not None and len(data) > limit:
        raise StorageError(f"{uri} is larger than {limit} bytes")
    return data


def _matches(path: Path, entry: FileEntry) -> bool:
    return path.is_file() and path.stat().st_size == entry.size and sha256_file(path) == entry.sha256


def _dir_manifest(root: Path) -> dict[str, dict[str, object]]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != COMPLETE_MARKER)
    return {
        p.relative_to(root).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)} for p in files
    }


class Location:
    """A file or directory in some store. Subclasses implement the primitive operations."""

    uri: str

    def child(self, *parts: str) -> Location:
        raise NotImplementedError

    def exists(self) -> bool:
        raise NotImplementedError

    def read_bytes(self, limit: int | None = None) -> bytes:
        """The whole object; StorageError if it is larger than `limit` bytes."""
        raise NotImplementedError

    def write_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    def list(self) -> list[str]:
        """Names directly under this location (files and sub-directories), sorted."""
        raise NotImplementedError

    def delete(self) -> None:
        """Remove this location and everything under it; absent is not an error."""
        raise NotImplementedError

    def upload_dir(self, local: Path) -> None:
        """Publish a local directory here, whole: files first, the `_COMPLETE` manifest last."""
        raise NotImplementedError

    def download_dir(self, local: Path, *, copy: bool = False) -> Path:
        """Copy a complete directory to `local` and return it; a local store returns its own path unless
        `copy`. Every file is checked against the manifest; ManifestError or StorageError say which not."""
        raise NotImplementedError

    def manifest(self) -> dict[str, FileEntry]:
        """The checked `_COMPLETE` manifest of this directory; FileNotFoundError when it is not complete."""
        try:
            data = self.child(COMPLETE_MARKER).read_bytes(limit=MAX_MANIFEST_BYTES)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{self.uri} is not a complete directory") from exc
        return parse_manifest(data, self.uri)

    def check(self) -> None:
        """Raise StorageError now if the store cannot be used, before any work is done."""

    # Derived operations, shared by every store.
    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def read_json(self) -> object:
        return json.loads(self.read_bytes())

    def write_json(self, obj: object) -> None:
        self.write_bytes((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))

    def is_complete_dir(self) -> bool:
        return self.child(COMPLETE_MARKER).exists()

    def __str__(self) -> str:
        return self.uri


@dataclass
class LocalLocation(Location):
    path: Path

    @property
    def uri(self) -> str:  # type: ignore[override]
        return str(self.path)

    def child(self, *parts: str) -> LocalLocation:
        return LocalLocation(self.path.joinpath(*parts))

    def exists(self) -> bool:
        return self.path.exists()

    def read_bytes(self, limit: int | None = None) -> bytes:
        try:
            with open(self.path, "rb") as fh:
                data = fh.read() if limit is None else fh.read(limit + 1)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{self.uri} does not exist") from exc
        return _within(data, limit, self.uri)

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

    def list(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if not p.name.startswith("."))

    def delete(self) -> None:
        if self.path.is_dir():
            shutil.rmtree(self.path)
        else:
            self.path.unlink(missing_ok=True)

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

    def download_dir(self, local: Path, *, copy: bool = False) -> Path:
        entries = self.manifest()
        root = self.path
        for rel, entry in entries.items():
            # Hashing every file of a local model at each load would cost minutes; a symbolic link out
            # of the store or a truncated file is what a local directory can really get wrong.
            src = _inside(root, rel)
            if src.is_symlink() or not src.is_file():
                raise ManifestError(f"{self.uri}: {rel!r} is listed in {COMPLETE_MARKER} but is not a regular file")
            if src.stat().st_size != entry.size:
                raise StorageError(f"{self.uri}: {rel!r} has {src.stat().st_size} bytes, its manifest says {entry.size}")
        if not copy:
            return root
        local = Path(local)
        for rel in entries:
            dest = _inside(local, rel)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / rel, dest)
        return local


_budget_override: contextvars.ContextVar[float | None] = contextvars.ContextVar("retry_budget", default=None)
# Refusals that the same request will meet again: retrying them only delays the error.
_FINAL_CODES = {"NoSuchKey", "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                "InvalidBucketName", "NoSuchUpload", "MethodNotAllowed", "InvalidArgument", "EntityTooLarge",
                "InvalidObjectName", "KeyTooLongError", "AccountProblem", "AllAccessDisabled"}
_TRANSIENT_STATUS = {408, 429}


@contextlib.contextmanager
def retry_budget(seconds: float) -> Iterator[None]:
    """Within this block (this thread), store operations retry for at most `seconds` (0: one attempt).

    For writes a later one replaces (a progress record), where waiting out an outage would stall the caller."""
    token = _budget_override.set(max(0.0, seconds))
    try:
        yield
    finally:
        _budget_override.reset(token)


def _transient(exc: BaseException) -> str | None:
    """A one-line description of `exc` when retrying may help, else None."""
    from http.client import HTTPException

    from minio.error import InvalidResponseError, S3Error, ServerError
    from urllib3.exceptions import HTTPError

    if isinstance(exc, S3Error):
        status = getattr(exc.response, "status", 0) or 0
        if exc.code in _FINAL_CODES or (status < 500 and status not in _TRANSIENT_STATUS and exc.code not in (
                "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "OperationAborted",
                "Throttling", "RequestTimeTooSkewed", "XMinioServerNotInitialized")):
            return None
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, ServerError):
        status = exc.status_code
    elif isinstance(exc, InvalidResponseError):  # a proxy's HTML error page, for instance
        status = getattr(exc, "_code", 0) or 0
    elif isinstance(exc, HTTPError | HTTPException | ConnectionError | TimeoutError):
        # The network, not the local disk: a missing local file or a full disk is not retried.
        return f"{type(exc).__name__}: {exc}"
    else:
        return None
    return f"HTTP {status}" if status >= 500 or status in _TRANSIENT_STATUS else None


def backoff(attempt: int, base: float, cap: float = MAX_BACKOFF_S) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): exponential, capped, half of it random."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _budget() -> float:
    override = _budget_override.get()
    return override if override is not None else float(
        os.environ.get(names.S3_RETRY_BUDGET) or DEFAULT_RETRY_BUDGET_S)


def _retrying(what: str, endpoint: str, fn: Callable[[], T]) -> T:
    budget = _budget()
    cap = os.environ.get(names.S3_RETRIES)
    max_attempts = max(1, int(cap)) if cap else None
    base = float(os.environ.get(names.S3_RETRY_DELAY) or 0.5)
    started = time.monotonic()
    deadline = started + budget
    attempt = 0
    while True:
        attempt += 1
        try:
            result = fn()
        except Exception as exc:
            last = _transient(exc)
            if last is None:
                raise
        else:
            if attempt > 1:
                log.info("object store %s: %s succeeded at attempt %d, after %.0f s", endpoint, what, attempt,
                         time.monotonic() - started)
            return result
        left = deadline - time.monotonic()
        if left <= 0 or (max_attempts is not None and attempt >= max_attempts):
            break
        if attempt == 1:
            log.warning("object store %s: %s failed (%s); retrying for up to %.0f s", endpoint, what, last, left)
        time.sleep(min(left, backoff(attempt, base)))
    raise StorageError(f"object store {endpoint} failed to {what} after {attempt} attempts in "
                       f"{time.monotonic() - started:.0f} s ({last})")


@cache
def _s3_client(access: StoreAccess):
    import urllib3
    from minio import Minio

    # Retries are ours (with backoff and a clear final error), so urllib3 must not retry silently.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=120), retries=urllib3.Retry(total=0), maxsize=16
    )
    return Minio(access.netloc, access_key=access.access_key, secret_key=access.secret_key, secure=access.secure,
                 region=access.region, http_client=http)


@dataclass
class S3Location(Location):
    bucket: str
    key: str  # no leading or trailing slash; "" is the bucket root
    bound: StoreAccess | None = field(default=None, compare=False)  # None: the environment's store

    @property
    def uri(self) -> str:  # type: ignore[override]
        return f"s3://{self.bucket}/{self.key}".rstrip("/")

    @property
    def access(self) -> StoreAccess:
        """The bound store, else the one this process's environment names."""
        if self.bound is not None:
            return self.bound
        found = resolve()
        if found is None:
            raise StorageError(f"{self.uri}: set {names.S3_ENDPOINT} to the object store's URL")
        return found

    @property
    def endpoint(self) -> str:
        return self.access.endpoint

    @property
    def client(self):
        return _s3_client(self.access)

    def _do(self, what: str, fn: Callable[[], T]) -> T:
        return _retrying(f"{what} {self.uri}", self.endpoint, fn)

    def child(self, *parts: str) -> S3Location:
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/"))
        return S3Location(self.bucket, key, self.bound)

    def check(self) -> None:
        # A store that cannot be reached before any work is done is more often misconfigured than
        # restarting: fail within CHECK_RETRY_BUDGET_S, and keep the full budget for later operations.
        with retry_budget(min(_budget(), CHECK_RETRY_BUDGET_S)):
            found = self._do("reach bucket of", lambda: self.client.bucket_exists(self.bucket))
        if not found:
            raise StorageError(f"bucket {self.bucket!r} does not exist at {self.endpoint}")

    def exists(self) -> bool:
        from minio.error import S3Error

        def probe() -> bool:
            try:
                self.client.stat_object(self.bucket, self.key)
                return True
            except S3Error as exc:
                if exc.code not in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                    raise
            return any(True for _ in self.client.list_objects(self.bucket, prefix=self.key + "/"))

        return self._do("look up", probe)

    def read_bytes(self, limit: int | None = None) -> bytes:
        from minio.error import S3Error

        def get() -> bytes:
            resp = self.client.get_object(self.bucket, self.key)
            try:
                return resp.read() if limit is None else resp.read(limit + 1)
            finally:
                resp.close()
                resp.release_conn()

        try:
            return _within(self._do("read", get), limit, self.uri)
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                raise FileNotFoundError(f"{self.uri} does not exist") from exc
            raise StorageError(f"{self.uri}: {exc.code}: {exc.message}") from exc

    def write_bytes(self, data: bytes) -> None:
        self._do("write", lambda: self.client.put_object(self.bucket, self.key, io.BytesIO(data), len(data)))

    def _walk(self) -> Iterator[str]:
        prefix = self.key + "/" if self.key else ""
        for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            yield obj.object_name

    def list(self) -> list[str]:
        prefix = self.key + "/" if self.key else ""

        def names() -> list[str]:
            found = set()
            for obj in self.client.list_objects(self.bucket, prefix=prefix):
                found.add(obj.object_name[len(prefix):].strip("/"))
            return sorted(n for n in found if n)

        return self._do("list", names)

    def delete(self) -> None:
        from minio.deleteobjects import DeleteObject

        def remove() -> None:
            keys = [DeleteObject(k) for k in self._walk()]
            if self.key:
                keys.append(DeleteObject(self.key))
            for err in self.client.remove_objects(self.bucket, keys):
                if err.code != "NoSuchKey":
                    raise StorageError(f"could not delete {err.name}: {err.message}")

        self._do("delete", remove)

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
        entries = self.manifest()  # every entry checked before anything is written
        local = Path(local)
        targets = {rel: _inside(local, rel) for rel in entries}
        missing = {rel: e for rel, e in entries.items() if not _matches(targets[rel], e)}
        _check_space(local, sum(e.size for e in missing.values()), self.uri)
        for rel, entry in missing.items():
            dest = targets[rel]
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = self.child(rel)
            self._do("download", lambda s=src, d=dest: self.client.fget_object(self.bucket, s.key, str(d)))
            if not _matches(dest, entry):
                got = dest.stat().st_size if dest.is_file() else None
                dest.unlink(missing_ok=True)
                raise StorageError(f"{self.uri}: {rel!r} does not match its {COMPLETE_MARKER} entry "
                                   f"({got} bytes, expected {entry.size} with sha256 {entry.sha256[:12]}...); "
                                   "the downloaded file was removed")
        return local


def _check_space(local: Path, needed: int, uri: str) -> None:
    probe = local
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed > free:
        raise StorageError(f"{uri}: needs {needed} bytes at {local}, only {free} free")


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
    text = str(uri)
    if text.startswith("s3://"):
        parsed = urlparse(text)
        if not parsed.netloc:
            raise ValueError(f"{text!r}: an S3 URI needs a bucket (s3://bucket/prefix)")
        return S3Location(parsed.netloc, parsed.path.strip("/"), access)
    if text.startswith("file://"):
        text = urlparse(text).path
    return LocalLocation(Path(text).expanduser())


def is_remote(uri: str | Path) -> bool:
    return str(uri).startswith("s3://")
