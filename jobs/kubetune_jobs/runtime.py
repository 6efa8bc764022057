"""Process-wide settings the workloads share.

torch sizes its CPU thread pool from the cores it can see, not from the container's CPU quota. In a
pod limited to 2 CPUs on a 64-core node, or beside another busy process, OpenMP threads then wait on
each other at every small kernel: measured here, a SmolLM2-135M decode step went from 60 ms to 2.3 s.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def cpu_budget() -> int:
    """CPUs this process may really use: affinity, capped by a cgroup v2/v1 CPU quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = None
    v2 = Path("/sys/fs/cgroup/cpu.max")
    try:
        if v2.exists():
            limit, period = v2.read_text().split()[:2]
            if limit != "max":
                quota = int(limit) / int(period)
        else:
            limit = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
            period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            if limit > 0:
                quota = limit / period
    except (OSError, ValueError):
        quota = None
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def configure_threads() -> int:
    """Size torch's CPU thread pool (KUBETUNE_THREADS overrides); returns the count used. Under torchrun the
    ranks of one node share its CPUs (LOCAL_WORLD_SIZE): two ranks with the whole budget each ran SmolLM2
    LoRA training at a fifth of one process's tokens/s here (BENCHMARKS.md, "train with several ranks")."""
    import torch

    ranks_here = max(1, int(os.environ.get("LOCAL_WORLD_SIZE") or 1))
    threads = int(os.environ.get("KUBETUNE_THREADS") or max(1, cpu_budget() // ranks_here))
    torch.set_num_threads(threads)
    return threads
