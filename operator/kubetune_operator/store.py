"""The operator's access to a run's object store: kubetune_jobs.storage locations with explicit credentials.

The jobs read endpoint and keys from their environment; the operator serves many runs with different
stores and Secrets, so it binds them per location instead of touching os.environ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubetune_jobs import storage


@dataclass(frozen=True)
class StoreAccess:
    endpoint: str
    access_key: str | None = None
    secret_key: str | None = None

    def __repr__(self) -> str:  # keys never reach logs
        return f"StoreAccess(endpoint={self.endpoint!r})"


@dataclass
class BoundS3Location(storage.S3Location):
    """An S3Location whose endpoint and credentials come from a StoreAccess rather than the environment."""

    access: StoreAccess | None = None

    @property
    def endpoint(self) -> str:  # type: ignore[override]
        assert self.access is not None
        return self.access.endpoint

    @property
    def client(self):  # type: ignore[override]
        assert self.access is not None
        return storage._s3_client(self.access.endpoint, self.access.access_key, self.access.secret_key)

    def child(self, *parts: str) -> BoundS3Location:
        plain = storage.S3Location(self.bucket, self.key).child(*parts)
        return BoundS3Location(plain.bucket, plain.key, access=self.access)


def locator(access: StoreAccess | None) -> Callable[[str], storage.Location]:
    """uri -> Location bound to `access` (s3:// URIs) or a local path."""

    def locate(uri: str) -> storage.Location:
        loc = storage.location(uri)
        if isinstance(loc, storage.S3Location) and access is not None:
            return BoundS3Location(loc.bucket, loc.key, access=access)
        return loc

    return locate
