"""Which object store a location talks to, and with which credentials: one resolution for every caller.

The operator resolves a run's store from its spec and its credentials Secret, `kubetune run` from the
manifest and the shell's environment, a job from its environment (which the operator or `kubetune run`
filled from the same resolution). An endpoint without a scheme gets `https` when `secure`, else `http`,
everywhere alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import env as names

DEFAULT_REGION = "us-east-1"


class StoreConfigError(ValueError):
    """An endpoint that is not an http(s) URL of a host; the message names it."""


def normalize_endpoint(endpoint: str, secure: bool = False) -> str:
    """`host:port` or `http(s)://host:port` -> `scheme://host:port` (no path, no credentials)."""
    text = endpoint.strip()
    if "://" not in text:
        text = f"{'https' if secure else 'http'}://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StoreConfigError(f"object store endpoint {endpoint!r} is not an http(s) URL of a host")
    if parts.username or parts.password:
        raise StoreConfigError("the object store endpoint must not carry credentials; use a credentials Secret")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise StoreConfigError(f"object store endpoint {endpoint!r} must be scheme://host[:port], without a path")
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class StoreAccess:
    """An S3 endpoint (normalized) and the keys to use with it (None: anonymous)."""

    endpoint: str
    access_key: str | None = None
    secret_key: str | None = None
    region: str = DEFAULT_REGION

    def __repr__(self) -> str:  # keys never reach logs
        return f"StoreAccess(endpoint={self.endpoint!r})"

    @property
    def secure(self) -> bool:
        return self.endpoint.startswith("https://")

    @property
    def netloc(self) -> str:
        return urlsplit(self.endpoint).netloc

    def env(self) -> dict[str, str]:
        """The environment a job needs to reach this store (for a subprocess; a Job gets keys by reference)."""
        out = {names.S3_ENDPOINT: self.endpoint, names.REGION: self.region}
        if self.access_key is not None:
            out[names.ACCESS_KEY] = self.access_key
        if self.secret_key is not None:
            out[names.SECRET_KEY] = self.secret_key
        return out


def resolve(endpoint: str | None = None, *, secure: bool = False, credentials: Mapping[str, str] | None = None,
            environ: Mapping[str, str] | None = None) -> StoreAccess | None:
    """The store to use, or None when no endpoint is known.

    `endpoint` (a manifest's or a setting's) wins over the environment's; `credentials` (a Secret's data)
    win over the environment's keys. A caller that must not fall back to ambient keys passes
    `credentials={}`.
    """
    environ = os.environ if environ is None else environ
    raw = endpoint or environ.get(names.S3_ENDPOINT) or environ.get(names.S3_ENDPOINT_FALLBACK)
    if not raw:
        return None
    keys = environ if credentials is None else credentials
    return StoreAccess(normalize_endpoint(raw, secure), keys.get(names.ACCESS_KEY) or None,
                       keys.get(names.SECRET_KEY) or None, environ.get(names.REGION) or DEFAULT_REGION)
