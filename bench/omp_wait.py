"""The train job's CPU throughput under libgomp's default wait (spin, then sleep) and under a passive wait
(`OMP_WAIT_POLICY=PASSIVE`, what `make test` gives its two workers), alone and two jobs side by side.

    .venv/bin/python bench/omp_wait.py [--steps 6] [--rounds 2] [--no-pair]

Each round runs `kubetune-job train` (SmolLM2-135M-Instruct, LoRA r16, tests/fixtures/toolcalls, fp32, batch
4) as a subprocess once per policy, alternating, so both see the same machine; with pairs, two such jobs start
together under each policy. The baseline is libgomp's own default, `GOMP_SPINCOUNT=300000` with no
`OMP_WAIT_POLICY` (what a job runs with unless told otherwise); the candidate is `OMP_WAIT_POLICY=PASSIVE`. Prints each
run's wall time and tokens/s (the job's progress.json) and the median ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kubetune_jobs.precision import OMP_ENV

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "fixtures" / "toolcalls"
POLICIES = {"default (spin 300000)": {"GOMP_SPINCOUNT": "300000"}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}}


def start(steps: int, policy: dict[str, str], out: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in OMP_ENV}
    cmd = [sys.executable, "-m", "kubetune_jobs.cli", "train", "--model", "bundled:smollm2-135m", "--data", str(DATA),
           "--output", str(out), "--max-steps", str(steps), "--batch-size", "4", "--grad-accum", "1",
           "--max-seq-length", "384", "--save-steps", "1000", "--precision", "fp32", "--no-load-in-4bit", "--no-merge"]
    return subprocess.Popen(cmd, env={**env, **policy}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(steps: int, policy: dict[str, str], work: Path, jobs: int) -> list[tuple[float, float]]:
    """(wall s, tokens/s) of each of `jobs` jobs started together."""
    outs = [Path(tempfile.mkdtemp(dir=work)) / "out" for _ in range(jobs)]
    began = time.monotonic()
    procs = [start(steps, policy, out) for out in outs]
    results = []
    for proc, out in zip(procs, outs, strict=True):
        if proc.wait():
            sys.exit(f"train job failed (rc {proc.returncode}) under {policy}")
        results.append((time.monotonic() - began, json.loads((out / "progress.json").read_text())["tokens_per_second"]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-pair", action="store_true", help="only single jobs")
    args = parser.parse_args()
    print(f"CPU: {os.cpu_count()} logical, load average {os.getloadavg()[0]:.1f} at start")
    tps: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for jobs in (1,) if args.no_pair else (1, 2):
                for name, policy in POLICIES.items():
                    results = run(args.steps, policy, Path(tmp), jobs)
                    tps.setdefault((name, jobs), []).extend(t for _, t in results)
                    print(f"round {r + 1}, {jobs} job(s), {name:21s}: " + ", ".join(
                        f"{wall:.0f} s at {t:.1f} tok/s" for wall, t in results), flush=True)
    print("\nmedian tokens/s per job")
    for jobs in (1,) if args.no_pair else (1, 2):
        base, passive = (statistics.median(tps[(name, jobs)]) for name in POLICIES)
        print(f"  {jobs} job(s) at once: default {base:.1f}, passive {passive:.1f} ({passive / base:.2f}x)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
