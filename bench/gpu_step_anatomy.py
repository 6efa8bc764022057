"""Where a LoRA training step's time goes on one GPU: the same model and step, batch by batch.

    python bench/gpu_step_anatomy.py [--shape qwen2.5-3b] [--tokenizer bundled:smollm2-135m] [--steps 6]
                                     [--only fixed,mask,...] [--work /tmp/kubetune-gpu] [--json FILE]

`bench/train_gpu.py` times whole runs; the plain-loop anchors time one fixed batch of 4 x 1,024 random
tokens. This times one training step (forward, backward, AdamW) of one model, LoRA r16 on all seven
projections, gradient checkpointing on, under each difference between those two setups in turn, and
prints the median step of --steps steps after 3 warm-up steps, and non-padding tokens/s over them:

  fixed            4 x 1,024 random tokens, no attention mask, bf16 weights (the anchors' batch)
  mask             the same tokens with a padding mask (rows of 100/90/80/70% length), pad labels -100
  autocast         fixed, inside torch.autocast(bf16), as the job and bench/hf_baseline.py train
  mask+autocast    both
  rows             the quickstart's stage-2 rows as the job tokenizes them, padded per batch, autocast:
                   the batches of train_gpu.py's `raw` run, a new padded length every step
  rows@1024        the same rows, every batch padded to 1,024: one shape for all steps

The model and data are train_gpu.py's (random weights of --shape, written once under --work).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import train_gpu

VARIANTS = ("fixed", "mask", "autocast", "mask+autocast", "rows", "rows@1024")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(train_gpu.SHAPES), default="qwen2.5-3b")
    parser.add_argument("--tokenizer", default="bundled:smollm2-135m")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant, after 3 warm-up steps")
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--only", default=",".join(VARIANTS), help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--work", type=Path, default=Path("/tmp/kubetune-gpu"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import hf_baseline
    import torch
    from transformers import DataCollatorForSeq2Seq

    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.work.mkdir(parents=True, exist_ok=True)
    model_dir = train_gpu.random_checkpoint(args.shape, args.tokenizer, args.work / f"model-{args.shape}")
    data_dir = train_gpu.prepared_data(model_dir, args.seq, args.work / f"data-{args.shape}-{args.seq}")
    # The same tokenizer, rows and LoRA-wrapped model as bench/train_gpu.py's `raw` and `hf` runs.
    tokenizer, rows, model = hf_baseline._setup(str(model_dir), data_dir, "bf16", args.seq, gradient_checkpointing=True)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)

    bs, seq = 4, args.seq
    vocab = min(model.config.vocab_size, len(tokenizer))
    ids = torch.randint(0, vocab, (bs, seq), device=device)
    mask = torch.zeros(bs, seq, dtype=torch.long, device=device)
    for i, share in enumerate((1.0, 0.9, 0.8, 0.7)):
        mask[i, :int(seq * share)] = 1
    fixed = {"input_ids": ids, "labels": ids}
    masked = {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    collate_full = DataCollatorForSeq2Seq(tokenizer, padding="max_length", max_length=seq, label_pad_token_id=-100)
    order = random.Random(42)

    def rows_batch(full: bool) -> dict[str, Any]:
        batch = (collate_full if full else collate)(order.sample(rows, bs))
        return {k: v.to(device) for k, v in batch.items()}

    plan = {
        "fixed": (lambda: fixed, False),
        "mask": (lambda: masked, False),
        "autocast": (lambda: fixed, True),
        "mask+autocast": (lambda: masked, True),
        "rows": (lambda: rows_batch(False), True),
        "rows@1024": (lambda: rows_batch(True), True),
    }
    wanted = [v for v in args.only.split(",") if v]
    unknown = sorted(set(wanted) - set(plan))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(plan)}")

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    results: list[dict[str, Any]] = []
    for name in wanted:
        make, autocast = plan[name]
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times, tokens = [], []
        for _ in range(3 + args.steps):
            batch = make()
            sync()
            start = time.perf_counter()
            with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
                loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            sync()
            times.append(time.perf_counter() - start)
            tokens.append(int(batch["attention_mask"].sum()) if "attention_mask" in batch else bs * seq)
        step_s = sorted(times[3:])[len(times[3:]) // 2]
        result = {"variant": name, "step_s": round(step_s, 4),
                  "tokens_per_s": round(sum(tokens[3:]) / sum(times[3:])),
                  "padded_len": int(batch["input_ids"].shape[1]),
                  "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None}
        results.append(result)
        print(json.dumps(result), flush=True)

    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
    base = next((r["tokens_per_s"] for r in results if r["variant"] == "fixed"), None)
    print(f"\nOne LoRA step, {args.shape} shape (random weights), {name}, batch 4, median of {args.steps}:")
    print(f"  {'variant':14} {'step s':>7} {'tokens/s':>9} {'vs fixed':>8} {'padded':>7} {'peak GiB':>9}")
    for r in results:
        ratio = f"{r['tokens_per_s'] / base:7.2f}x" if base else "       -"
        print(f"  {r['variant']:14} {r['step_s']:7.3f} {r['tokens_per_s']:9d} {ratio:>8} {r['padded_len']:7d} "
              f"{r['peak_gib'] or 0:9.2f}")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "shape": args.shape, "results": results}, indent=1))


if __name__ == "__main__":
    main()
