"""The store's retry backoff: exponential, capped, and half of each wait random (so pods restarted
together do not retry in step)."""

from __future__ import annotations

import random

from kubetune_jobs import storage


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    random.seed(0)
    for attempt in range(1, 16):
        ceiling = min(storage.MAX_BACKOFF_S, 0.5 * 2 ** (attempt - 1))
        waits = [storage.backoff(attempt, 0.5) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 100  # jittered, not a fixed schedule
    assert storage.backoff(40, 0.5) <= storage.MAX_BACKOFF_S
