"""Local evaluation's generation on CPU: fp32 against bf16, same items, same run, and what `auto` picks.

    .venv/bin/python bench/generate_cpu.py [--model bundled:smollm2-135m] [--items 16] [--max-new-tokens 96]

Runs `LocalTarget.predict` (batched greedy generation, as `kubetune-job evaluate --local-model` does)
over the first seed-tools items twice: once with the weights in fp32 (the baseline), once in bf16.
Prints the time of each, the ratio, on how many items the two runs produced the same calls and text,
and what `precision: auto` picks for generation here (kubetune_jobs.precision), with its reason, and
whether that is the faster of the two. Set ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 to make a CPU with
AMX run as one with AVX-512 BF16 only.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bundled:smollm2-135m")
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    args = ap.parse_args()

    import torch

    from kubetune_jobs.evaluate import suites
    from kubetune_jobs.evaluate.targets import LocalTarget
    from kubetune_jobs.precision import agreement
    from kubetune_jobs.runtime import configure_threads

    threads = configure_threads()
    items = suites.load("seed-tools", limit=args.items)
    target = LocalTarget(args.model, max_new_tokens=args.max_new_tokens)  # loads in auto's precision
    picked = target.precision
    runs = {}
    for label, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        target.model.to(dtype)
        start = time.perf_counter()
        runs[label] = (target.predict(items, desc=label), time.perf_counter() - start)
    (base, base_s), (ours, ours_s) = runs["fp32"], runs["bf16"]
    same = sum(base[i.id].calls == ours[i.id].calls and base[i.id].text == ours[i.id].text for i in items)
    print(f"\nlocal generation, {args.model}, {len(items)} seed-tools items, {args.max_new_tokens} new tokens, "
          f"{threads} threads")
    print(f"  fp32 (baseline)  {base_s:7.1f} s   {len(items) / base_s:.2f} items/s")
    print(f"  bf16             {ours_s:7.1f} s   {len(items) / ours_s:.2f} items/s   {base_s / ours_s:.2f}x")
    print(f"  identical outputs      {same}/{len(items)}")
    print(f"  auto picks {picked.name} ({picked.reason})")
    print(f"  {agreement(picked.name, base_s / ours_s)}")


if __name__ == "__main__":
    main()
