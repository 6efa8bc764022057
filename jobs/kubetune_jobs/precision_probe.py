"""The measurement behind `precision: auto` on CPU: the same small work in fp32 and in bf16, timed.

The model is SmolLM2-135M's shape (hidden 576, MLP 1536, 9 query and 3 key-value heads, tied
embeddings) cut to `LAYERS` layers, with random weights. Its vocabulary is cut in the same
proportion (49,152 x 2/30), so the head is the same share of the work as in the 30-layer model.

  training    forward and backward of 2 rows x 256 tokens through PEFT LoRA r16 on all seven
              projections, as the train job runs it: frozen weights bf16 under bf16 autocast, or
              everything fp32; logits only for the second half of each row (the job's loss asks for
              logits only where a token is labelled). Compute-bound, as training is.
  generation  the time of a reference evaluation batch (`REF_*`: 8 prompts of 900 tokens, 112 new
              tokens, SmolLM2-135M), put together from its parts measured small: the prefill (the
              small model's forward over 8 x 96 tokens, scaled to the reference's tokens and layers),
              each decoding step's per-layer work (the small model's KV-cache steps, scaled to 30
              layers) and its weight traffic: a decoding step reads every weight once, 0.5 GB in
              fp32 and half that in bf16, more than a CPU cache holds, which the small model's
              weights do not show, so the probe also multiplies a batch of 8 through all 30
              layers' projections and the head at full size.

Each is run once to warm up, then alternately `RUNS` times; the fastest run of each precision
counts, as the one least disturbed by other processes; whether its two fastest runs agree says
whether it can be trusted at all. While they do not, up to `MAX_RUNS` are made: on a busy machine a
few more runs usually catch two quiet ones. Where bf16's fastest run already takes `DECISIVE` times
fp32's slowest, the probe stops: no later run could make bf16 the pick.

The probe runs on one thread and counts the CPU time its process used, not the wall clock: a machine
others keep busy stretches the wall time of a multi-threaded step many times over (each thread waits
for the slowest to be scheduled), for both precisions alike. At load 6.5 on 2 cores, timed by the
wall clock on 2 threads, a training probe that takes 0.21 s in fp32 and 0.14 s in bf16 on a quiet
AMX machine took 4.43 s and 4.42 s: "bf16 no faster", cached. One thread's CPU time is the work
itself, and bf16 and fp32 kernels scale alike with threads, so their ratio carries over.

The global RNG and torch's thread count are left as they were, so a run that probes trains exactly as
one that reads the cached verdict.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

from .precision import GENERATION, TRAINING, Timings, steady

HIDDEN, MLP, KV = 576, 1536, 192
LAYERS = 2
VOCAB = 49152 * LAYERS // 30
RUNS, MAX_RUNS = 3, 6
# A bf16 run that takes this many times fp32's slowest already decides for fp32 (the safe choice): more runs
# only cost time. A CPU without bf16 units takes 6.3 s of CPU time for the training step fp32 does in 0.44 s,
# and the probe's other runs were 25 s of a fresh machine's first training.
DECISIVE = 2.0
TRAIN_ROWS, TRAIN_TOKENS = 2, 256
PREFILL_ROWS, PREFILL_TOKENS, DECODE_STEPS, STREAM_STEPS = 8, 96, 6, 2
REF_PROMPT_TOKENS, REF_NEW_TOKENS, REF_LAYERS, REF_VOCAB = 900, 112, 30, 49152
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def measure(workload: str) -> Timings:
    """CPU seconds of `workload` on one thread in each precision (training: one step; generation: the
    reference batch)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(workload)
    finally:
        torch.set_num_threads(threads)


def _clock() -> float:
    return time.process_time()


def _measure(workload: str) -> Timings:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        work = {TRAINING: _training, GENERATION: _generation}[workload]
        runs = {name: work(dtype) for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
        for run in runs.values():
            run()  # warm-up: oneDNN builds its kernels on first use
        times: dict[str, list[float]] = {name: [] for name in runs}
        for done in range(1, MAX_RUNS + 1):
            for name, run in runs.items():
                times[name].append(run())
            if min(times["bf16"]) >= DECISIVE * max(times["fp32"]):
                break  # fp32 however the next runs go
            if done >= RUNS and steady(_timings(times)):
                break
    return _timings(times)


def _timings(times: dict[str, list[float]]) -> Timings:
    # How far the two fastest runs of a precision are apart: close, and the fastest is a real figure. (After a
    # decisive first round there is one run each: its verdict is fp32 whatever their spread.)
    return Timings(fp32_s=min(times["fp32"]), bf16_s=min(times["bf16"]),
                   spread=max(sorted(t)[1] / sorted(t)[0] if len(t) > 1 else 1.0 for t in times.values()))


def _model(dtype: Any) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=HIDDEN, intermediate_size=MLP, num_attention_heads=9, num_key_value_heads=3,
                         num_hidden_layers=LAYERS, vocab_size=VOCAB, max_position_embeddings=2048,
                         tie_word_embeddings=True)
    return LlamaForCausalLM(config).to(dtype)


def _training(dtype: Any) -> Callable[[], float]:
    import torch
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_model(dtype), LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=16,
                                                     target_modules=LORA_TARGETS))
    model.train()
    inner = model.get_base_model()
    ids = torch.randint(0, VOCAB, (TRAIN_ROWS, TRAIN_TOKENS))
    labelled = slice(TRAIN_TOKENS // 2, None)
    autocast = dtype == torch.bfloat16

    def step() -> float:
        started = _clock()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            hidden = inner.model(input_ids=ids).last_hidden_state
            logits = inner.lm_head(hidden[:, labelled]).float()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), ids[:, labelled].reshape(-1))
        loss.backward()
        model.zero_grad(set_to_none=True)
        return _clock() - started

    return step


def _generation(dtype: Any) -> Callable[[], float]:
    import torch
    import torch.nn.functional as F

    model = _model(dtype).eval()
    # Newer transformers 5 releases call `past_key_values` `cache`; the project allows any 5.x.
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    prompt = torch.randint(1, VOCAB, (PREFILL_ROWS, PREFILL_TOKENS))
    token = prompt[:, -1:]
    # Values do not change the speed of a product; a constant fill is quick to make.
    shapes = [(HIDDEN, HIDDEN), (KV, HIDDEN), (KV, HIDDEN), (HIDDEN, HIDDEN), (MLP, HIDDEN), (MLP, HIDDEN),
              (HIDDEN, MLP)]
    layers = [[torch.full(shape, 0.01, dtype=dtype) for shape in shapes] for _ in range(REF_LAYERS)]
    head = torch.full((REF_VOCAB, HIDDEN), 0.01, dtype=dtype)
    x = torch.full((PREFILL_ROWS, HIDDEN), 0.01, dtype=dtype)

    def stream() -> None:  # one decoding step's products at full size, batch 8
        for *attention, gate, up, down in layers:
            for weight in attention:
                F.linear(x, weight)
            F.linear(F.linear(x, gate) * F.linear(x, up), down)
        F.linear(x, head)

    def generate() -> float:
        with torch.inference_mode():
            t0 = _clock()
            cache = _cache(model(input_ids=prompt, use_cache=True, logits_to_keep=1))
            t1 = _clock()
            for _ in range(DECODE_STEPS):
                cache = _cache(model(input_ids=token, use_cache=True, **{cache_arg: cache}))
            t2 = _clock()
            for _ in range(STREAM_STEPS):
                stream()
            t3 = _clock()
        prefill = (t1 - t0) * (REF_PROMPT_TOKENS * REF_LAYERS) / (PREFILL_TOKENS * LAYERS)
        step = (t2 - t1) / DECODE_STEPS * REF_LAYERS / LAYERS + (t3 - t2) / STREAM_STEPS
        return prefill + step * REF_NEW_TOKENS

    return generate


def _cache(output: Any) -> Any:
    return output.cache if hasattr(output, "cache") else output.past_key_values
