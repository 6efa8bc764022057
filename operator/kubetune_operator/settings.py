"""The operator's settings, read once at startup (from the environment the Helm chart sets, or given
directly by a test or bench) into one object that every handler receives. No module reads the
environment at import time.

    KUBETUNE_KUBE_URL            API server URL to use instead of in-cluster/kubeconfig login (an emulator,
                                 `kubectl proxy`); the one documented way to point the operator elsewhere
    KUBETUNE_OPERATOR_NAMESPACE  the operator's own namespace (downward API)
    KUBETUNE_RESYNC_SECONDS      how often unfinished resources are reconciled without an event
    KUBETUNE_WATCH_TIMEOUT       server-side watch timeout (seconds)
    KUBETUNE_S3_ENDPOINT         default object store for resources that name none
    KUBETUNE_STORE_SECRET        Secret (operator namespace) with that store's keys
    KUBETUNE_SHARE_STORE         "true": resources naming no credentials get a copy of that Secret
    KUBETUNE_PUSHGATEWAY         default Pushgateway for resources that name none
    KUBETUNE_PROMETHEUS_URL      Prometheus that KEDA queries to autoscale ModelServes
    KUBETUNE_JOBS_IMAGE / KUBETUNE_VLLM_IMAGE   default images
    KUBETUNE_JOBSET              "true": multi-node training steps run as JobSets (jobset.x-k8s.io/v1alpha2,
                                 its CRD installed) instead of an Indexed Job + headless Service
    KUBETUNE_CLEANUP_ATTEMPTS / _TIMEOUT / _DELAY   artifact deletion on `cleanupPolicy: Delete`
    KUBETUNE_DISCOVERY_SECONDS   how long the API groups the cluster serves are taken as known (an optional
                                 API installed later, KEDA or the Prometheus Operator, is used after that)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

from .apitypes import DEFAULT_JOBS_IMAGE

DEFAULT_VLLM_IMAGE = "vllm/vllm-openai:v0.32.0"


@dataclass(frozen=True)
class Settings:
    api_url: str | None = None
    namespace: str | None = None
    resync_seconds: float = 30.0
    watch_timeout: int = 300
    store_endpoint: str | None = None
    store_secret: str | None = None
    share_store: bool = False
    pushgateway: str | None = None
    prometheus: str | None = None
    jobs_image: str = DEFAULT_JOBS_IMAGE
    vllm_image: str = DEFAULT_VLLM_IMAGE
    jobset: bool = False
    cleanup_attempts: int = 3
    cleanup_timeout: float = 60.0
    cleanup_delay: float = 10.0
    discovery_seconds: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from `environ` (default: this process's), then `overrides` (command-line flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(_ENV[f.name]) if f.name in _ENV else None
            if raw is None or raw == "":
                continue
            kind = type(f.default) if f.default is not None else str
            values[f.name] = raw.strip().lower() in ("1", "true", "yes") if kind is bool else kind(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


_ENV = {
    "api_url": "KUBETUNE_KUBE_URL",
    "namespace": "KUBETUNE_OPERATOR_NAMESPACE",
    "resync_seconds": "KUBETUNE_RESYNC_SECONDS",
    "watch_timeout": "KUBETUNE_WATCH_TIMEOUT",
    "store_endpoint": "KUBETUNE_S3_ENDPOINT",
    "store_secret": "KUBETUNE_STORE_SECRET",
    "share_store": "KUBETUNE_SHARE_STORE",
    "pushgateway": "KUBETUNE_PUSHGATEWAY",
    "prometheus": "KUBETUNE_PROMETHEUS_URL",
    "jobs_image": "KUBETUNE_JOBS_IMAGE",
    "vllm_image": "KUBETUNE_VLLM_IMAGE",
    "jobset": "KUBETUNE_JOBSET",
    "cleanup_attempts": "KUBETUNE_CLEANUP_ATTEMPTS",
    "cleanup_timeout": "KUBETUNE_CLEANUP_TIMEOUT",
    "cleanup_delay": "KUBETUNE_CLEANUP_DELAY",
    "discovery_seconds": "KUBETUNE_DISCOVERY_SECONDS",
}
