"""What the handlers of every kind share in one operator process (kopf's memo)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from ..settings import Settings


@dataclass
class Context:
    api: k8s.ApiClient
    settings: Settings
    # One lock per resource serialises its reconciles in this process; keyed by kind, so a FineTuneRun
    # and a ModelServe of the same name never wait on each other.
    locks: dict[tuple[str, str, str], asyncio.Lock] = field(default_factory=dict)
    # API discovery, cached: (when it was asked, the groups the cluster serves).
    _groups: tuple[float, frozenset[str]] | None = None
    _discovery: asyncio.Lock = field(default_factory=asyncio.Lock)

    def lock(self, kind: str, namespace: str, name: str) -> asyncio.Lock:
        return self.locks.setdefault((kind, namespace, name), asyncio.Lock())

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self.locks.pop((kind, namespace, name), None)

    async def api_groups(self) -> frozenset[str]:
        """The API groups the cluster serves (is the Prometheus Operator, KEDA installed?), asked at most once
        per `settings.discovery_seconds`, so an API installed later is seen within that bound and reconciles
        do not each ask. When the question fails, the last answer stands (none yet: no optional group) and
        the next call asks again."""
        async with self._discovery:
            now = time.monotonic()
            if self._groups is not None and now - self._groups[0] < self.settings.discovery_seconds:
                return self._groups[1]
            try:
                found = await k8s.ApisApi(self.api).get_api_versions()
            except ApiException:
                return self._groups[1] if self._groups is not None else frozenset()
            self._groups = (now, frozenset(g.name for g in found.groups or []))
            return self._groups[1]
