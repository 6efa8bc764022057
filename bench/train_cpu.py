"""Training throughput on CPU: our train job vs plain HF Trainer + PEFT, in fp32 and bf16 autocast.

    .venv/bin/python bench/train_cpu.py [--model bundled:smollm2-135m] [--steps 8] [--precisions fp32,bf16]
                                        [--no-baseline]

Both sides train LoRA r16 on all linear layers of SmolLM2-135M-Instruct over the same tokenized rows
(tests/fixtures/toolcalls, assistant-only labels), batch 4, for the same number of optimizer steps, in
each precision, all in this one process run. Every figure comes from the same progress callback (the
job's progress.json `tokens_per_second`: non-padding tokens per second from the start of training to
the last logged step). Our side is TRL's SFTTrainer with the job's lean loss (logits only where a
token is labelled) and its per-step token accuracy; the baseline is the model's own full-logits loss.
bf16 is autocast: frozen weights in bf16, LoRA weights and optimizer state in fp32. Prints tokens/s
for each side and precision, the ratios, our held-out loss in each precision (the same learning, or
not), and what `--precision auto` picks for training here (kubetune_jobs.precision's probe) and
whether that fits the measured ratio. `--no-baseline` skips the plain HF side (half the time); set
ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 to make a CPU with AMX run as one with AVX-512 BF16 only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "fixtures" / "toolcalls"


def ours(model: str, steps: int, precision: str, work: Path) -> tuple[float, float]:
    """Tokens/s and the held-out loss after training."""
    from kubetune_jobs import cli

    out = work / f"ours-{precision}"
    rc = cli.main(["train", "--model", model, "--data", str(DATA), "--output", str(out), "--max-steps", str(steps),
                   "--batch-size", "4", "--grad-accum", "1", "--max-seq-length", "384", "--save-steps", "1000",
                   "--precision", precision, "--no-load-in-4bit", "--no-merge"])
    if rc:
        sys.exit(f"our trainer failed with {rc}")
    progress = json.loads((out / "progress.json").read_text())
    return float(progress["tokens_per_second"]), float(progress["eval_loss"])


def baseline(model: str, steps: int, precision: str, work: Path) -> float:
    from hf_baseline import train

    from kubetune_jobs.models import resolve

    record = train(resolve(model), DATA, work / f"hf-{precision}", steps=steps, precision=precision,
                   max_seq_length=384)
    return float(record["tokens_per_second"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled:smollm2-135m")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated; the first is the baseline")
    parser.add_argument("--no-baseline", action="store_true", help="train only with our job, not plain HF")
    args = parser.parse_args()
    precisions = args.precisions.split(",")
    results: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        for precision in precisions:
            hf = float("nan") if args.no_baseline else baseline(args.model, args.steps, precision, Path(tmp))
            ours_tps, loss = ours(args.model, args.steps, precision, Path(tmp))
            results[precision] = (ours_tps, hf, loss)
        elapsed = time.monotonic() - t0
    first = results[precisions[0]][0]
    print(f"\nCPU LoRA training, {args.model}, {args.steps} steps of batch 4 (tokens/s, non-padding):")
    print(f"  {'precision':10} {'kubetune train':>15} {'plain HF + PEFT':>16} {'ratio':>6} "
          f"{'vs ' + precisions[0]:>9} {'held-out loss':>14}")
    for precision, (tps, hf, loss) in results.items():
        print(f"  {precision:10} {tps:15.1f} {hf:16.1f} {tps / hf:5.2f}x {tps / first:8.2f}x {loss:14.4f}")
    print(f"  ({elapsed:.0f}s total)")
    if {"fp32", "bf16"} <= results.keys():
        from kubetune_jobs import precision as precisions

        picked = precisions.auto(precisions.TRAINING)
        print(f"  auto picks {picked.name} ({picked.reason})")
        print(f"  {precisions.agreement(picked.name, results['bf16'][0] / results['fp32'][0])}")


if __name__ == "__main__":
    main()
