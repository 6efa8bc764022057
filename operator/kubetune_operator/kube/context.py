"""What the handlers of every kind share in one operator process (kopf's memo)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from kubernetes_asyncio import client as k8s

from ..settings import Settings


@dataclass
class Context:
    api: k8s.ApiClient
    settings: Settings
    # One lock per resource serialises its reconciles in this process; keyed by kind, so a FineTuneRun
    # and a ModelServe of the same name never wait on each other.
    locks: dict[tuple[str, str, str], asyncio.Lock] = field(default_factory=dict)

    def lock(self, kind: str, namespace: str, name: str) -> asyncio.Lock:
        return self.locks.setdefault((kind, namespace, name), asyncio.Lock())

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self.locks.pop((kind, namespace, name), None)
