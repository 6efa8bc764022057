"""What a decoding step of the evaluator's local generation costs per row, by batch size and prompt length.

    .venv/bin/python bench/generation_batch.py [--batches 8,16,32] [--new 32]

The bundled SmolLM2-135M in fp32 through `kubetune_jobs.evaluate.generation.greedy` (the evaluator's own
path), on random prompts shaped like the suites': a 920-token shared beginning (seed-tools' tools block) and
a 150-token one (BFCL's template), each followed by 40-80 tokens of a row's own. For each shape and batch it
prints the prefill time and the decoding time per step and per row-token (the difference of two runs, 4 and
4 + `--new` new tokens, so the prefill cancels out). Batch 8, the evaluator's default until it was raised, is
the baseline in the same run.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="8,16,32")
    parser.add_argument("--new", type=int, default=32)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from kubetune_jobs import runtime
    from kubetune_jobs.evaluate.generation import greedy
    from kubetune_jobs.models import resolve

    torch.set_num_threads(runtime.cpu_budget())
    model = AutoModelForCausalLM.from_pretrained(resolve("bundled:smollm2-135m"), dtype=torch.float32).eval()
    rng = torch.Generator().manual_seed(0)
    print(f"threads {torch.get_num_threads()}")
    for shared_len in (920, 150):
        shared = torch.randint(100, 40000, (shared_len,), generator=rng).tolist()
        for batch in (int(b) for b in args.batches.split(",")):
            prompts = [shared + torch.randint(100, 40000, (int(torch.randint(40, 80, (1,), generator=rng)),),
                                              generator=rng).tolist() for _ in range(batch)]
            greedy(model, prompts[:2], max_new_tokens=2, stop_ids=set(), pad_id=0, batch_size=batch)  # warm-up
            took = []
            for new in (4, 4 + args.new):
                started = time.perf_counter()
                greedy(model, prompts, max_new_tokens=new, stop_ids=set(), pad_id=0, batch_size=batch)
                took.append(time.perf_counter() - started)
            step = (took[1] - took[0]) / args.new
            print(f"shared beginning {shared_len:4d} tokens, batch {batch:3d}: prefill ~{took[0]:.1f} s, "
                  f"decoding {step * 1000:.0f} ms/step = {step / batch * 1000:.1f} ms per row-token", flush=True)


if __name__ == "__main__":
    main()
