"""URLs that users write into manifests (Pushgateway, endpoints): what makes one unusable or unsafe."""

from __future__ import annotations

from urllib.parse import urlsplit


def problems(url: str) -> list[str]:
    """Why `url` cannot be used as an http(s) service URL in a manifest; empty when it can."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a non-numeric port
    except ValueError as exc:
        return [f"not a URL ({exc})"]
    out = []
    if parts.scheme not in ("http", "https") or not parts.hostname:
        out.append("must be an http(s):// URL of a host")
    if parts.username or parts.password:
        # A manifest is readable by everyone who can list the resource, and the URL would reach Job args.
        out.append("must not carry credentials (user:password@); give them to the jobs through a Secret")
    if port == 0:
        out.append("port 0 is not a port")
    return out
