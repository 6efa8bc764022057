"""Talking to a Prometheus Pushgateway: the jobs push, the operator deletes what a run or a serve pushed.
Best-effort, and without showing its credentials.

Metrics are for watching a job, never a reason to fail it: a gateway that is down, a name that does
not resolve or a URL that cannot be parsed costs one warning per job, and the job's result stands.
Likewise a gateway that cannot be cleaned never holds up a deletion (`forget` logs and goes on).

A URL may carry credentials (`http://user:password@host:9091`). They are taken out of it and sent as
HTTP basic auth through prometheus_client's `basic_auth_handler`, and the URL the job logs or puts in
an error message is the one without them (`redact`).
"""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, delete_from_gateway, push_to_gateway
from prometheus_client.exposition import basic_auth_handler, default_handler

log = logging.getLogger(__name__)
# After a failed push, pushes that only refresh figures wait this long: an unresolvable or black-holed
# gateway must not add its timeout to every training step.
QUIET_AFTER_FAILURE_S = 30.0


def redact(url: str) -> str:
    """`url` without the user name and password it may carry."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    except ValueError:
        return "<unparseable URL>"


class Gateway:
    """One Pushgateway, its credentials held apart from the URL."""

    def __init__(self, url: str) -> None:
        self.shown = redact(url)
        self.problem: str | None = None
        self._secrets: list[str] = []
        self._username: str | None = None
        self._password: str | None = None
        self.url = self.shown
        try:
            parts = urlsplit(url if "://" in url else f"http://{url}")
            if parts.scheme not in ("http", "https"):
                self.problem = f"scheme {parts.scheme!r} is not http or https"
            elif not parts.hostname:
                self.problem = "it names no host"
            else:
                parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
            if parts.username is not None:
                self._username, self._password = unquote(parts.username), unquote(parts.password or "")
                self._secrets = [s for s in (parts.password, self._password) if s]
        except ValueError as exc:
            self.problem = str(exc)
        self._warned = False
        self._quiet_until = 0.0

    def _handler(self, url: str, method: str, timeout: float | None, headers: list, data: bytes) -> Any:
        if self._username is None:
            return default_handler(url, method, timeout, headers, data)
        return basic_auth_handler(url, method, timeout, headers, data, self._username, self._password)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def push(self, job: str, registry: CollectorRegistry, grouping_key: dict[str, str], *, timeout: float,
             force: bool = True) -> bool:
        """Push `registry`; False (after one warning per gateway) when the push did not happen.

        With `force` false, a push right after a failure is skipped (see QUIET_AFTER_FAILURE_S)."""
        if self.problem is not None:
            self._warn(f"{self.shown} is not a usable Pushgateway URL ({self._scrub(self.problem)})")
            return False
        if not force and time.monotonic() < self._quiet_until:
            return False
        try:
            push_to_gateway(self.url, job=job, registry=registry, grouping_key=grouping_key, timeout=timeout,
                            handler=self._handler)
        except Exception as exc:  # noqa: BLE001 - urllib and http.client raise many types; none may end the job
            self._quiet_until = time.monotonic() + QUIET_AFTER_FAILURE_S
            self._warn(f"could not push to {self.shown} ({self._scrub(f'{type(exc).__name__}: {exc}')})")
            return False
        if self._warned:
            log.info("metrics reach %s again", self.shown)
            self._warned = False
        return True

    def groups(self, *, timeout: float) -> list[dict[str, str]]:
        """The grouping labels (`job` included) of every group the gateway holds (its /api/v1/metrics)."""
        if self.problem is not None:
            raise ValueError(f"{self.shown} is not a usable Pushgateway URL ({self._scrub(self.problem)})")
        request = urllib.request.Request(f"{self.url.rstrip('/')}/api/v1/metrics")
        if self._username is not None:
            token = base64.b64encode(f"{self._username}:{self._password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - http(s) checked above
            body = json.loads(resp.read())
        return [dict(group.get("labels") or {}) for group in body.get("data") or []]

    def forget(self, owns: Callable[[Mapping[str, str]], bool], *, timeout: float = 5.0) -> list[dict[str, str]]:
        """Delete every group `owns` accepts; the groups deleted. Failures are logged, never raised."""
        deleted: list[dict[str, str]] = []
        try:
            for labels in self.groups(timeout=timeout):
                if not owns(labels):
                    continue
                key = {k: v for k, v in labels.items() if v}  # an empty label is no label
                job = key.pop("job")
                delete_from_gateway(self.url, job=job, grouping_key=key, timeout=timeout, handler=self._handler)
                deleted.append(labels)
        except Exception as exc:  # noqa: BLE001 - as for pushes: any urllib/http.client/JSON failure
            log.warning("could not delete pushed metrics from %s (%s)", self.shown,
                        self._scrub(f"{type(exc).__name__}: {exc}"))
        return deleted

    def _warn(self, what: str) -> None:
        if not self._warned:
            log.warning("metrics are best-effort and this job goes on without them: %s", what)
            self._warned = True
