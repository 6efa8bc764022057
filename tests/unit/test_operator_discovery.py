"""API discovery (which optional APIs the cluster serves: KEDA, the Prometheus Operator) is asked once per
bound, not on every reconcile, against the test cluster; an API installed later is seen once the bound has
passed, and a failed question keeps the last answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import kmock
import pytest

from kubetune_operator.kube.client import api_client
from kubetune_operator.kube.context import Context
from kubetune_operator.settings import Settings
from support.kmock_cluster import EmulatedCluster

KEDA = "keda.sh/v1alpha1/scaledobjects"


@pytest.fixture
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster() as c:
        yield c


def asked(cluster: EmulatedCluster) -> int:
    return cluster.emulator.served["GET /apis/"]


def install_keda(cluster: EmulatedCluster) -> None:
    cluster.emulator.resources[KEDA] = kmock.ResourceInfo(kind="ScaledObject", singular="scaledobject",
                                                          namespaced=True, verbs={"get", "list", "create"})


def with_contexts(cluster: EmulatedCluster, discovery_seconds: float,
                  body: Callable[[Callable[[], Context]], Awaitable[None]]) -> None:
    """Run `body` with a maker of operator contexts (one API client) against the test cluster."""
    async def main() -> None:
        settings = Settings(api_url=cluster.url, discovery_seconds=discovery_seconds)
        async with await api_client(settings) as api:
            await body(lambda: Context(api=api, settings=settings))

    asyncio.run(main())


def test_discovery_is_asked_once_per_bound(cluster: EmulatedCluster) -> None:
    async def body(context: Callable[[], Context]) -> None:
        ctx = context()
        first = await ctx.api_groups()
        assert {"apps", "batch", "kubetune.io"} <= first and "keda.sh" not in first
        install_keda(cluster)
        for _ in range(20):
            assert await ctx.api_groups() == first, "within the bound the answer is the cached one"
        assert asked(cluster) == 1

    with_contexts(cluster, 3600, body)


def test_an_api_installed_later_is_seen_after_the_bound(cluster: EmulatedCluster) -> None:
    async def body(context: Callable[[], Context]) -> None:
        ctx = context()
        assert "keda.sh" not in await ctx.api_groups()
        install_keda(cluster)
        assert "keda.sh" in await ctx.api_groups()
        assert asked(cluster) == 2

    with_contexts(cluster, 0, body)


def test_a_failed_discovery_keeps_the_last_answer(cluster: EmulatedCluster) -> None:
    async def body(context: Callable[[], Context]) -> None:
        ctx = context()
        known = await ctx.api_groups()
        cluster.emulator["get /apis/"] << 503
        assert await ctx.api_groups() == known
        assert await context().api_groups() == frozenset(), "no answer yet: no optional API is assumed"
        assert asked(cluster) == 3

    with_contexts(cluster, 0, body)
