"""Local evaluation's generation on CPU: fp32 against the dtype the evaluator picks, same items, same run.

    .venv/bin/python bench/generate_cpu.py [--model bundled:smollm2-135m] [--items 16] [--max-new-tokens 96]

Runs `LocalTarget.predict` (batched greedy generation, as `kubetune-job evaluate --local-model` does)
over the first seed-tools items twice: once with the weights in fp32 (the baseline) and once in the
dtype `runtime.inference_dtype()` picks here (bf16 on CPUs with AMX / AVX-512 BF16). Prints the time of
each, the ratio, and on how many items the two runs produced the same calls and text.
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
    from kubetune_jobs.runtime import configure_threads, fast_cpu_bf16, inference_dtype

    threads = configure_threads()
    items = suites.load("seed-tools", limit=args.items)
    target = LocalTarget(args.model, max_new_tokens=args.max_new_tokens)
    picked = inference_dtype()
    runs = {}
    for label, dtype in (("fp32 (baseline)", torch.float32), (f"{str(picked).split('.')[-1]} (picked)", picked)):
        target.model.to(dtype)
        start = time.perf_counter()
        runs[label] = (target.predict(items, desc=label), time.perf_counter() - start)
    (base_label, (base, base_s)), (label, (ours, ours_s)) = runs.items()
    same = sum(base[i.id].calls == ours[i.id].calls and base[i.id].text == ours[i.id].text for i in items)
    print(f"\nlocal generation, {args.model}, {len(items)} seed-tools items, {args.max_new_tokens} new tokens, "
          f"{threads} threads, bf16 matrix units: {fast_cpu_bf16()}")
    print(f"  {base_label:22s} {base_s:7.1f} s   {len(items) / base_s:.2f} items/s")
    print(f"  {label:22s} {ours_s:7.1f} s   {len(items) / ours_s:.2f} items/s   {base_s / ours_s:.2f}x")
    print(f"  identical outputs      {same}/{len(items)}")


if __name__ == "__main__":
    main()
