"""Logging in to the API server: in-cluster, a kubeconfig, or the URL in `Settings.api_url`."""

from __future__ import annotations

from typing import Any

import kopf
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from ..settings import Settings


async def api_client(settings: Settings) -> k8s.ApiClient:
    if settings.api_url:
        return k8s.ApiClient(k8s.Configuration(host=settings.api_url))
    try:
        k8s_config.load_incluster_config()
    except k8s_config.ConfigException:
        await k8s_config.load_kube_config()
    return k8s.ApiClient()


def connection(config: Settings, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's login (`kwargs` are kopf's own): the configured URL, else the service account, else the
    kubeconfig."""
    if config.api_url:
        return kopf.ConnectionInfo(server=config.api_url, insecure=True, default_namespace="default")
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
