"""Where artifacts live: a local directory or an S3-compatible object store (MinIO), one interface.

A location is written as a path (`/data/run`, `file:///data/run`) or `s3://bucket/prefix`. The S3
endpoint and credentials are never flags, so they stay out of command lines, pod specs and logs: a
job reads them from its environment (`contract.env`: KUBETUNE_S3_ENDPOINT, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY), the operator binds each location to its run's store (`location(uri, access)`);
both resolve through `contract.store.resolve`.

Directories are published whole or not at all: files go up first and a `_COMPLETE` manifest (every
file with its size and sha256) goes last; readers treat a directory without it as absent. Local
directories are built under a temporary name and renamed into place.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from .contract import env as names
from .contract.layout import COMPLETE_MARKER
from .contract.store import StoreAccess, resolve

T = TypeVar("T")


class StorageError(RuntimeError):
    """The store could not be reached or refused an operation; the message names which and why."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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

    def read_bytes(self) -> bytes:
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

    def download_dir(self, local: Path) -> Path:
        """Copy a complete directory to `local` and return it (a local store returns its own path)."""
        raise NotImplementedError

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

    def read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{self.uri} does not exist") from exc

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

    def download_dir(self, local: Path) -> Path:
        if not self.is_complete_dir():
            raise FileNotFoundError(f"{self.uri} is not a complete directory")
        return self.path


def _retrying(what: str, endpoint: str, fn: Callable[[], T]) -> T:
    from minio.error import S3Error
    from urllib3.exceptions import HTTPError

    attempts = max(1, int(os.environ.get(names.S3_RETRIES, "5")))
    delay = float(os.environ.get(names.S3_RETRY_DELAY, "0.5"))
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId",
                            "SignatureDoesNotMatch"):
                raise
            last = f"{exc.code}: {exc.message}"
        except (HTTPError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if attempt < attempts:
            time.sleep(min(delay * 2 ** (attempt - 1), 8.0))
    raise StorageError(f"object store {endpoint} failed to {what} after {attempts} attempts ({last})")


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
        if not self._do("reach bucket of", lambda: self.client.bucket_exists(self.bucket)):
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

    def read_bytes(self) -> bytes:
        from minio.error import S3Error

        def get() -> bytes:
            resp = self.client.get_object(self.bucket, self.key)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

        try:
            return self._do("read", get)
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

    def download_dir(self, local: Path) -> Path:
        try:
            manifest = json.loads(self.child(COMPLETE_MARKER).read_bytes())
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{self.uri} is not a complete directory") from exc
        local = Path(local)
        for rel, meta in manifest.items():
            dest = local / rel
            if dest.exists() and dest.stat().st_size == meta["size"] and sha256_file(dest) == meta["sha256"]:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = self.child(rel)
            self._do("download", lambda s=src, d=dest: self.client.fget_object(self.bucket, s.key, str(d)))
        return local


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
