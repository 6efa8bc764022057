"""Reading a store: a local directory or an S3-compatible object store (MinIO SDK), one interface.

A location is written as a path (`/data/run`, `file:///data/run`) or `s3://bucket/prefix`. The S3
endpoint and credentials are never part of it: an S3 location talks to the store it is bound to
(`location(uri, access)`, how the operator reads a resource's store) or else to the one this process's
environment names (`contract.store.resolve`, how a job reads). Failures that may pass are retried
(`contract.retries`).

This is what both sides read with; the jobs' `storage` adds writing and whole directories on top.
Everything read from a store is untrusted, so a record is read with `read_record`: at most the cap its
kind declares (`records`, `layout`) plus one byte, and refused unparsed (`TooLarge`) beyond it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Self, TypeVar
from urllib.parse import urlparse

from . import env as names
from . import records
from .layout import COMPLETE_MARKER
from .retries import StorageError, retrying
from .store import StoreAccess, resolve

T = TypeVar("T")


class TooLarge(StorageError):
    """An object over the cap of what it is meant to be: unusable, and never parsed."""


def _too_large(uri: str, limit: int, size: int | None) -> TooLarge:
    """`size`: the object's whole size where the store says it (a stream may not)."""
    got = f"{size} bytes > {limit}" if size is not None and size > limit else f"more than {limit} bytes"
    return TooLarge(f"{uri} is unusable, too large ({got})")


class Location:
    """A file or directory in some store. Subclasses implement the primitive operations."""

    uri: str

    def child(self, *parts: str) -> Self:
        raise NotImplementedError

    def exists(self) -> bool:
        raise NotImplementedError

    def read_bytes(self, limit: int | None = None) -> bytes:
        """The whole object; with `limit`, at most `limit` + 1 bytes are read and TooLarge says it has more."""
        raise NotImplementedError

    def list(self) -> list[str]:
        """Names directly under this location (files and sub-directories), sorted."""
        raise NotImplementedError

    def delete(self) -> None:
        """Remove this location and everything under it; absent is not an error."""
        raise NotImplementedError

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def read_json(self) -> object:
        return json.loads(self.read_bytes())

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

    def child(self, *parts: str) -> Self:
        return dataclasses.replace(self, path=self.path.joinpath(*parts))

    def exists(self) -> bool:
        return self.path.exists()

    def read_bytes(self, limit: int | None = None) -> bytes:
        try:
            with open(self.path, "rb") as fh:
                if limit is None:
                    return fh.read()
                data = fh.read(limit + 1)
                if len(data) > limit:
                    raise _too_large(self.uri, limit, os.fstat(fh.fileno()).st_size)
                return data
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{self.uri} does not exist") from exc

    def list(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if not p.name.startswith("."))

    def delete(self) -> None:
        if self.path.is_dir():
            shutil.rmtree(self.path)
        else:
            self.path.unlink(missing_ok=True)


@cache
def s3_client(access: StoreAccess) -> Any:
    import urllib3
    from minio import Minio

    # Retries are ours (with backoff and a clear final error), so urllib3 must not retry silently.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=120), retries=urllib3.Retry(total=0), maxsize=16
    )
    return Minio(access.netloc, access_key=access.access_key, secret_key=access.secret_key, secure=access.secure,
                 region=access.region, http_client=http)


def _length(resp: Any) -> int | None:
    try:
        return int(resp.headers.get("Content-Length"))
    except (TypeError, ValueError):
        return None


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
    def client(self) -> Any:
        return s3_client(self.access)

    def _do(self, what: str, fn: Callable[[], T]) -> T:
        return retrying(f"{what} {self.uri}", self.endpoint, fn)

    def child(self, *parts: str) -> Self:
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/"))
        return dataclasses.replace(self, key=key)

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
                if limit is None:
                    return resp.read()
                data = resp.read(limit + 1)
                if len(data) > limit:
                    raise _too_large(self.uri, limit, _length(resp))
                return data
            finally:
                resp.close()
                resp.release_conn()

        try:
            return self._do("read", get)
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                raise FileNotFoundError(f"{self.uri} does not exist") from exc
            raise StorageError(f"{self.uri}: {exc.code}: {exc.message}") from exc

    def walk(self) -> Iterator[str]:
        """Every object's key under this location (not retried: callers retry the whole walk)."""
        prefix = self.key + "/" if self.key else ""
        for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            yield obj.object_name

    def list(self) -> list[str]:
        prefix = self.key + "/" if self.key else ""

        def found_names() -> list[str]:
            found = set()
            for obj in self.client.list_objects(self.bucket, prefix=prefix):
                found.add(obj.object_name[len(prefix):].strip("/"))
            return sorted(n for n in found if n)

        return self._do("list", found_names)

    def delete(self) -> None:
        from minio.deleteobjects import DeleteObject

        def remove() -> None:
            keys = [DeleteObject(k) for k in self.walk()]
            if self.key:
                keys.append(DeleteObject(self.key))
            for err in self.client.remove_objects(self.bucket, keys):
                if err.code != "NoSuchKey":
                    raise StorageError(f"could not delete {err.name}: {err.message}")

        self._do("delete", remove)


L = TypeVar("L", bound=LocalLocation)
S = TypeVar("S", bound=S3Location)


def location_of(uri: str | Path, access: StoreAccess | None, local: type[L], s3: type[S]) -> L | S:
    """`uri` as a `local` or an `s3` location (the jobs' storage passes its own, writable, kinds)."""
    text = str(uri)
    if text.startswith("s3://"):
        parsed = urlparse(text)
        if not parsed.netloc:
            raise ValueError(f"{text!r}: an S3 URI needs a bucket (s3://bucket/prefix)")
        return s3(parsed.netloc, parsed.path.strip("/"), access)
    if text.startswith("file://"):
        text = urlparse(text).path
    return local(Path(text).expanduser())


def location(uri: str | Path, access: StoreAccess | None = None) -> LocalLocation | S3Location:
    """Parse `s3://bucket/key`, `file:///path` or a plain path; an S3 location talks to `access` when given,
    else to the store this process's environment names."""
    return location_of(uri, access, LocalLocation, S3Location)


def is_remote(uri: str | Path) -> bool:
    return str(uri).startswith("s3://")


def read_record(loc: Location, record: type[records.R]) -> records.R | None:
    """The record at `loc`, read no further than its kind's cap: None when it is absent or not such a
    record; TooLarge (its bytes never parsed) when it is over the cap; StorageError when the store fails."""
    try:
        data = loc.read_bytes(limit=record.max_bytes)
    except FileNotFoundError:
        return None
    return records.read(record, data)
