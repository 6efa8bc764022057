"""Does the `precision: auto` probe predict the real workloads? Both measured here, fp32 and bf16 interleaved.

    .venv/bin/python bench/precision_check.py [--model bundled:smollm2-135m] [--steps 6] [--items 16]
                                              [--max-new-tokens 96] [--skip training|generation]

First the probe (`kubetune_jobs.precision_probe.measure`, fresh, not the cache) for each workload, then
the real thing with the real model, fp32 and bf16 taking turns so that other load on the machine falls
on both alike (bench/train_cpu.py and bench/generate_cpu.py run one precision after the other, minutes
apart, which a shared machine's load swings can turn around):

  training    LoRA r16 on all seven projections of the model loaded in each precision, batches of 4 of
              the fixture's tool-calling rows (tests/fixtures/toolcalls, the job's tokenization, up to
              384 tokens), the job's labelled-only loss, bf16 autocast for bf16, AdamW step: one step
              per precision in turn, the first of each not timed; tokens/s counts non-padding tokens
  generation `LocalTarget.predict` (what `kubetune-job evaluate --local-model` runs) over the first
              seed-tools items, one batch of 8 per precision in turn

Prints each probe's timings and verdict, each workload's measured bf16 speedup, and whether the
verdict fits it (bf16 picked: bf16 was faster; fp32 picked: bf16 was not `SPEEDUP_NEEDED` faster).
Set ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 to make a CPU with AMX run as one with AVX-512 BF16 only.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "fixtures" / "toolcalls"


def training(model: str, steps: int) -> dict[str, float]:
    """Non-padding tokens/s per precision, steps interleaved."""
    import torch
    from hf_baseline import _setup
    from transformers import DataCollatorForSeq2Seq

    from kubetune_jobs.models import resolve
    from kubetune_jobs.train.trainer import labelled_loss

    path = resolve(model)
    runs = {}
    for name in ("fp32", "bf16"):
        tokenizer, rows, lora = _setup(path, DATA, name, 384, gradient_checkpointing=False)
        lora.train()
        optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=2e-4)
        runs[name] = (lora, optimizer)
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    order = random.Random(42)
    batches = [collate(order.sample(rows, 4)) for _ in range(steps + 1)]
    spent = {name: 0.0 for name in runs}
    tokens = sum(int(b["attention_mask"].sum()) for b in batches[1:])
    for i, batch in enumerate(batches):
        for name, (lora, optimizer) in runs.items():
            started = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bf16"):
                loss = labelled_loss(lora, batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if i:  # the first step of each builds oneDNN's kernels
                spent[name] += time.perf_counter() - started
    return {name: tokens / seconds for name, seconds in spent.items()}


def generation(model: str, items: int, max_new_tokens: int) -> dict[str, float]:
    """Seconds per precision over the same items, batches interleaved."""
    import torch

    from kubetune_jobs.evaluate import suites
    from kubetune_jobs.evaluate.targets import LocalTarget

    chosen = suites.load("seed-tools", limit=items)
    targets = {name: LocalTarget(model, max_new_tokens=max_new_tokens) for name in ("fp32", "bf16")}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        targets[name].model.to(dtype)
    for target in targets.values():
        target.predict(chosen[:1], desc="warm-up")
    spent = {name: 0.0 for name in targets}
    batch = targets["fp32"].batch_size
    for start in range(0, len(chosen), batch):
        for name, target in targets.items():
            t0 = time.perf_counter()
            target.predict(chosen[start:start + batch], desc=name)
            spent[name] += time.perf_counter() - t0
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bundled:smollm2-135m")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--skip", choices=["training", "generation"], default=None)
    args = ap.parse_args()

    from kubetune_jobs import precision, precision_probe
    from kubetune_jobs.runtime import configure_threads

    threads = configure_threads()
    print(f"{precision.machine_key()['cpu']}, {threads} threads, "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}", file=sys.stderr)
    lines = []
    for workload in (precision.TRAINING, precision.GENERATION):
        if workload == args.skip:
            continue
        t0 = time.perf_counter()
        probed = precision_probe.measure(workload)
        took = time.perf_counter() - t0
        verdict = precision.decide(workload, probed)
        t0 = time.perf_counter()
        if workload == precision.TRAINING:
            rate = training(args.model, args.steps)
            speedup = rate["bf16"] / rate["fp32"]
            real = f"fp32 {rate['fp32']:.1f} tok/s, bf16 {rate['bf16']:.1f} tok/s ({args.steps} steps each)"
        else:
            spent = generation(args.model, args.items, args.max_new_tokens)
            speedup = spent["fp32"] / spent["bf16"]
            real = (f"fp32 {spent['fp32']:.1f} s, bf16 {spent['bf16']:.1f} s ({args.items} seed-tools items, "
                    f"{args.max_new_tokens} new tokens)")
        lines += [f"{workload}:",
                  f"  probe   fp32 {probed.fp32_s * 1000:.0f} ms, bf16 {probed.bf16_s * 1000:.0f} ms: bf16 "
                  f"{probed.speedup:.2f}x (spread {probed.spread:.2f}, {took:.1f} s) -> {verdict.name}",
                  f"  real    {real}: bf16 {speedup:.2f}x ({time.perf_counter() - t0:.0f} s)",
                  f"  {precision.agreement(verdict.name, speedup)}"]
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
