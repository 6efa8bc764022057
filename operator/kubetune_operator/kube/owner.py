"""Owner references: every object the operator creates belongs to the resource it was created for, so
Kubernetes deletes it with its owner and the operator can tell its own objects from others'."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..apitypes import API_VERSION


@dataclass(frozen=True)
class Owner:
    """The kubetune resource an object belongs to."""

    kind: str
    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {"apiVersion": API_VERSION, "kind": self.kind, "name": self.name, "uid": self.uid,
                "controller": True, "blockOwnerDeletion": True}

    def owns(self, obj: dict[str, Any]) -> bool:
        """Whether `obj` names this very resource (by uid) as its controller."""
        refs = (obj.get("metadata") or {}).get("ownerReferences") or []
        return any(r.get("uid") == self.uid and r.get("controller") for r in refs)
