"""The `precision: auto` probe alone, repeated: its timings, verdicts and cost on this machine.

    .venv/bin/python bench/precision_probe.py [--repeat 3] [--workloads training,generation]

Runs `kubetune_jobs.precision_probe.measure` (not the cache; one thread, CPU time, see its docstring)
`--repeat` times for each workload and prints, per run, the fastest fp32 and bf16 times, bf16's
speedup, how far the runs of one precision were apart, the verdict, and the seconds the probe took.
Compare the verdicts with bench/train_cpu.py and bench/generate_cpu.py, which print the measured
ratio and auto's pick. Set ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 to make a CPU with AMX run as one with AVX-512 BF16 only.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workloads", default="training,generation")
    args = ap.parse_args()

    started = time.perf_counter()
    import peft  # noqa: F401  (imported by the jobs anyway; kept out of the probe's own time)
    import transformers  # noqa: F401

    from kubetune_jobs import precision, precision_probe
    from kubetune_jobs.runtime import configure_threads

    threads = configure_threads()
    print(f"imports {time.perf_counter() - started:.1f} s; {threads} threads; "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}; {precision.machine_key()['cpu']}")
    for workload in args.workloads.split(","):
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            timings = precision_probe.measure(workload)
            took = time.perf_counter() - t0
            print(f"  {workload:10} fp32 {timings.fp32_s * 1000:6.0f} ms  bf16 {timings.bf16_s * 1000:6.0f} ms  "
                  f"bf16 {timings.speedup:4.2f}x  spread {timings.spread:4.2f}  -> "
                  f"{precision.decide(workload, timings).name}   probe {took:4.1f} s")


if __name__ == "__main__":
    main()
