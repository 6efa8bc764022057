"""Events on a resource: the transitions users see in `kubectl describe`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import kopf

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


def post(body: dict[str, Any], event: Event) -> None:
    try:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message[:1024])
    except Exception:  # noqa: BLE001 - an event that cannot be posted must not stop the reconcile
        log.debug("event %s not posted", event.reason, exc_info=True)
