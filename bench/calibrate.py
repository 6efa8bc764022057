"""How fast this machine is right now, as one number: put it beside every timing of `make demo` or `make test`.

    .venv/bin/python bench/calibrate.py            # or: make calibrate

A fixed piece of work that does not depend on the project's code (so it moves with the machine, not with our
changes): plain transformers + PEFT, SmolLM2-135M-Instruct (the bundled model) in fp32, LoRA r16 on every
linear projection, AdamW, batches of 2 x 256 fixed token ids, one warm-up step, then `--steps` timed steps,
on as many threads as the jobs would use (`runtime.cpu_budget()`). Prints the training tokens/s of the timed
steps, the thread count, the load average and the CPU model and flags, on one line. About 20-30 s on a
2-core AVX2 machine (the first run on a fresh machine also converts the bundled model, ~15 s, not timed).

A demo or suite timing is only comparable with another when their calibrations are close: a machine that is
twice as slow today shows it here, and the same code then takes about twice as long.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

ROWS, LENGTH = 2, 256
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((set(line.split(":", 1)[1].split()) for line in info.splitlines() if line.startswith("flags")), set())
    return f"{model} [{' '.join(f for f in FLAGS if f in flags) or 'no AVX2'}]"


def measure(steps: int) -> tuple[float, int]:
    """(tokens/s over the timed steps, threads)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from kubetune_jobs.models import resolve
    from kubetune_jobs.runtime import configure_threads

    hf_logging.disable_progress_bar()  # one line of output, nothing else
    warnings.filterwarnings("ignore", category=FutureWarning)
    threads = configure_threads()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(resolve("bundled:smollm2-135m"), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, task_type="CAUSAL_LM", target_modules=[
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(100, model.config.vocab_size, (ROWS, LENGTH), generator=torch.Generator().manual_seed(0))

    def step() -> None:
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()  # warm-up: first-call allocations and kernel choices
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * ROWS * LENGTH / (time.perf_counter() - start), threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    tokens_per_second, threads = measure(args.steps)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"calibration: {tokens_per_second:.0f} tok/s (fixed LoRA training, SmolLM2-135M fp32, {threads} threads; "
          f"load {load}; {cpu()})")


if __name__ == "__main__":
    main()
