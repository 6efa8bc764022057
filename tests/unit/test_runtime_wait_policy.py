"""The jobs make OpenMP threads wait passively unless the user chose how they wait."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kubetune_jobs import runtime


def test_passive_unless_the_environment_says_otherwise() -> None:
    env: dict[str, str] = {}
    runtime.default_wait_policy(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    for chosen in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "300000"}):
        env = dict(chosen)
        runtime.default_wait_policy(env)
        assert env == chosen


@pytest.mark.parametrize(("given", "seen"), [({}, "PASSIVE"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE")])
def test_a_job_process_sets_it_before_torch_loads_openmp(given: dict[str, str], seen: str) -> None:
    """What a train/evaluate/serve job does first (cli.main), in a fresh process: the policy is in the
    environment when torch (and its OpenMP runtime) is imported."""
    code = ("import sys; from kubetune_jobs import runtime; assert 'torch' not in sys.modules; "
            "runtime.configure_threads(); import os; "
            "assert 'torch' in sys.modules; print(os.environ['OMP_WAIT_POLICY'])")
    env = {k: v for k, v in os.environ.items() if k not in runtime.WAIT_POLICY_ENV} | given
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == seen
