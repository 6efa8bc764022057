"""Data-parallel training throughput on this machine: one process against N torchrun ranks (gloo on CPU,
NCCL on GPUs), the same global batch, the same rows, the same steps.

    .venv/bin/python bench/train_ddp.py [--model bundled:smollm2-135m] [--steps 8] [--ranks 2]

Both sides are `kubetune-job train` (LoRA r16 on all seven projections, fp32 on CPU, global batch 4 =
per-device batch 2 x accumulation (2 for one process, 1 for two ranks) over tests/fixtures/toolcalls),
the distributed side started with the same torchrun command line as a Job and `kubetune run`
(`contract.launch`). On a CPU the one process gets every core and each rank an equal share (the job's own
default, `runtime.configure_threads`), so the comparison is of the same machine split two ways. Figures are progress.json's `tokens_per_second`
(non-padding tokens of all ranks, from the end of the first step) and the final training loss (the two
sides must agree: they train the same steps on the same rows).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "fixtures" / "toolcalls"
sys.path.insert(0, str(ROOT / "jobs"))


def train(model: str, steps: int, ranks: int, out: Path) -> tuple[float, float, float]:
    """(tokens/s, final loss, wall seconds) of one run."""
    from kubetune_jobs.contract.launch import TORCHRUN_MODULE, Launch

    accum = 4 // (2 * ranks)
    args = ["train", "--model", model, "--data", str(DATA), "--output", str(out), "--batch-size", "2",
            "--grad-accum", str(accum), "--max-steps", str(steps), "--max-seq-length", "384", "--save-steps", "1000",
            "--precision", "fp32", "--no-load-in-4bit", "--no-merge", "--logging-steps", "1"]
    if ranks == 1:
        cmd = [sys.executable, "-m", "kubetune_jobs.cli", *args]
    else:
        cmd = [sys.executable, "-m", TORCHRUN_MODULE, *Launch(nproc_per_node=ranks).torchrun_args(), *args]
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if done.returncode:
        sys.exit(f"{ranks}-rank run failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    progress = json.loads((out / "progress.json").read_text())
    assert progress["world_size"] == ranks and progress["effective_batch"] == 4, progress
    return float(progress["tokens_per_second"]), float(progress["loss"]), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled:smollm2-135m")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--ranks", type=int, default=2)
    args = parser.parse_args()
    from kubetune_jobs.models import resolve
    from kubetune_jobs.runtime import cpu_budget

    resolve(args.model)  # converted and cached once, before several ranks would each convert it
    with tempfile.TemporaryDirectory() as tmp:
        one = train(args.model, args.steps, 1, Path(tmp) / "one")
        many = train(args.model, args.steps, args.ranks, Path(tmp) / "many")
    threads = cpu_budget()
    print(f"\nLoRA training, {args.model}, {args.steps} steps of global batch 4, {threads} CPUs in all:")
    print(f"  {'layout':28} {'tokens/s':>9} {'final loss':>11} {'wall':>6}")
    for label, (tps, loss, wall) in ((f"1 process x {threads} threads", one),
                                     (f"{args.ranks} ranks x {max(threads // args.ranks, 1)} threads", many)):
        print(f"  {label:28} {tps:9.1f} {loss:11.4f} {wall:5.0f}s")
    print(f"  ratio {many[0] / one[0]:.2f}x")


if __name__ == "__main__":
    main()
