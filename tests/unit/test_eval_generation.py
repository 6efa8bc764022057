"""The evaluator's generation: prompts that begin alike share one encoding of that beginning, rows leave a batch
when they end, and each row gets exactly the tokens `model.generate` picks greedily for its prompt alone.

The model is the tiny random Qwen2 with larger weights (so that every token it picks depends on the whole prompt,
positions included: with its initial ones it repeats one token whatever it reads), in float64 (so that no
difference in summation order between a batch and a single prompt can move an argmax). The prompts are real
suite items (seed-tools' long shared tools block, BFCL's short shared template), rendered and tokenized as the
evaluator does.
"""

from __future__ import annotations

from collections import Counter

import pytest

from kubetune_jobs.evaluate import generation, suites
from kubetune_jobs.evaluate.targets import LocalTarget

NEW_TOKENS = 12


@pytest.fixture(scope="module")
def target(tiny_qwen2: str, tmp_path_factory: pytest.TempPathFactory) -> LocalTarget:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_qwen2, dtype=torch.float32)
    rng = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for weight in (p for p in model.parameters() if p.ndim == 2):
            weight.copy_(torch.randn(weight.shape, generator=rng) * 2 / weight.shape[1] ** 0.5)
    path = tmp_path_factory.mktemp("sensitive-qwen2")
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_qwen2).save_pretrained(path)
    local = LocalTarget(str(path), batch_size=3, max_new_tokens=NEW_TOKENS)
    local.model.double()
    return local


@pytest.fixture(scope="module")
def items() -> list[suites.Item]:
    return suites.load("seed-tools", limit=5) + suites.load("bfcl-simple_python", limit=4)


def alone(target: LocalTarget, prompt: list[int], stop: set[int]) -> list[int]:
    """What today's reference path generates for one prompt, with no batch and no cache shared."""
    import torch

    with torch.inference_mode():
        out = target.model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                    max_new_tokens=NEW_TOKENS, do_sample=False, temperature=None, top_p=None,
                                    top_k=None, eos_token_id=sorted(stop), pad_token_id=target.tokenizer.pad_token_id)
    return out[0, len(prompt):].tolist()


def prompts_of(target: LocalTarget, items: list[suites.Item]) -> list[list[int]]:
    return [target.tokenizer(target._prompt(it), add_special_tokens=False)["input_ids"] for it in items]


def test_batched_shared_prefix_generation_is_each_prompts_own_greedy_generation(target: LocalTarget,
                                                                                items: list[suites.Item]) -> None:
    prompts = prompts_of(target, items)
    # A token the random model emits in some answers and not others serves as the stop: rows then end at
    # different steps, and leave their batch while the others go on.
    free = [alone(target, p, {target.tokenizer.eos_token_id}) for p in prompts]
    counts = Counter(t for ids in free for t in set(ids[1:-1]))
    stop = next(t for t, n in counts.most_common() if 1 < n < len(prompts))
    expected = [alone(target, p, {stop}) for p in prompts]
    assert len({len(e) for e in expected}) > 1, "every row ran the same length: the stop proves nothing"

    encoded = []
    hook = target.model.get_input_embeddings().register_forward_hook(
        lambda _m, args, _out: encoded.append(args[0].numel()))
    try:
        got = generation.greedy(target.model, prompts, max_new_tokens=NEW_TOKENS, stop_ids={stop},
                                pad_id=target.tokenizer.pad_token_id, batch_size=3)
    finally:
        hook.remove()
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        trimmed = e[:e.index(stop) + 1] if stop in e else e
        assert g.ids == trimmed, f"prompt {i}: {g.ids} != {trimmed}"
        assert g.stopped == (stop in e)
    # The seed-tools prompts share their ~900-token tools block: encoded once, not once per prompt or batch.
    seed = prompts[:5]
    shared = min(generation.common_prefix(seed[0], p) for p in seed[1:])
    assert shared > 800
    prefill = sum(n for n in encoded if n > len(prompts))  # decode steps feed one token per row
    assert prefill < sum(map(len, prompts)) - 1.5 * shared


def test_local_target_scores_what_each_prompt_alone_generates(target: LocalTarget, items: list[suites.Item]) -> None:
    predictions = target.predict(items)
    for item, prompt in zip(items, prompts_of(target, items), strict=True):
        ids = alone(target, prompt, target._stop_ids)
        text = target._cut(target.tokenizer.decode(ids, skip_special_tokens=False))
        pred = predictions[item.id]
        assert pred.raw == text, item.id
        assert pred.cut_off == (len(ids) == NEW_TOKENS and not target._stop_ids & set(ids)), item.id
        assert pred.latency_s is not None and pred.latency_s > 0


def test_rows_without_a_shared_beginning_are_left_padded(target: LocalTarget) -> None:
    prompts = [[5, 6, 7, 8, 9], [300, 301], [7, 7, 7, 7, 7, 7, 7, 7, 1, 2, 3]]
    eos = {target.tokenizer.eos_token_id}
    got = generation.greedy(target.model, prompts, max_new_tokens=NEW_TOKENS, stop_ids=eos,
                            pad_id=target.tokenizer.pad_token_id, batch_size=3)
    assert [g.ids for g in got] == [alone(target, p, eos) for p in prompts]
