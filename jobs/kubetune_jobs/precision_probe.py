"""The measurement behind `precision: auto` on CPU: the same small work in fp32 and in bf16, timed.

The model is SmolLM2-135M's shape (hidden 576, MLP 1536, 9 query and 3 key-value heads, tied
embeddings) cut to `LAYERS` layers, with random weights. Its vocabulary is cut in the same
proportion (49,152 x 2/30), so the head is the same share of the work as in the 30-layer model.

  training    forward and backward of 2 rows x 256 tokens through PEFT LoRA r16 on all seven
              projections, as the train job runs it: frozen weights bf16 under bf16 autocast, or
              everything fp32; logits only for the second half of each row (the job's loss asks for
              logits only where a token is labelled)
  generation  transformers' greedy `generate`, 4 prompts x 192 tokens then 12 new tokens (prefill
              and KV-cache decoding in about the proportion of an evaluation), weights bf16 or fp32

Each is run once to warm up, then alternately `RUNS` times; the fastest run of each precision
counts, as the one least disturbed by other processes; whether its two fastest runs agree says
whether it can be trusted at all. The global RNG is left as it was, so a run
that probes trains exactly as one that reads the cached verdict.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .precision import GENERATION, TRAINING, Timings

LAYERS = 2
VOCAB = 49152 * LAYERS // 30
RUNS = 3
TRAIN_ROWS, TRAIN_TOKENS = 2, 256
PROMPTS, PROMPT_TOKENS, NEW_TOKENS = 4, 192, 12
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def measure(workload: str) -> Timings:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        work = {TRAINING: _training, GENERATION: _generation}[workload]
        runs = {name: work(dtype) for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
        for run in runs.values():
            run()  # warm-up: oneDNN builds its kernels on first use
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(RUNS):
            for name, run in runs.items():
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
    # How far the two fastest runs of a precision are apart: close, and the fastest is a real figure.
    return Timings(fp32_s=min(times["fp32"]), bf16_s=min(times["bf16"]),
                   spread=max(sorted(t)[1] / sorted(t)[0] for t in times.values()))


def _model(dtype: Any) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=576, intermediate_size=1536, num_attention_heads=9, num_key_value_heads=3,
                         num_hidden_layers=LAYERS, vocab_size=VOCAB, max_position_embeddings=2048,
                         tie_word_embeddings=True)
    return LlamaForCausalLM(config).to(dtype)


def _training(dtype: Any) -> Callable[[], None]:
    import torch
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_model(dtype), LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=16,
                                                     target_modules=LORA_TARGETS))
    model.train()
    inner = model.get_base_model()
    ids = torch.randint(0, VOCAB, (TRAIN_ROWS, TRAIN_TOKENS))
    labelled = slice(TRAIN_TOKENS // 2, None)
    autocast = dtype == torch.bfloat16

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            hidden = inner.model(input_ids=ids).last_hidden_state
            logits = inner.lm_head(hidden[:, labelled]).float()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), ids[:, labelled].reshape(-1))
        loss.backward()
        model.zero_grad(set_to_none=True)

    return step


def _generation(dtype: Any) -> Callable[[], None]:
    import torch

    model = _model(dtype).eval()
    ids = torch.randint(1, VOCAB, (PROMPTS, PROMPT_TOKENS))
    mask = torch.ones_like(ids)

    def generate() -> None:
        with torch.inference_mode():
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                           do_sample=False, temperature=None, top_p=None, top_k=None, pad_token_id=0)

    return generate
