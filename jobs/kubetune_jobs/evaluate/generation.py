"""Greedy generation for many prompts that begin alike, as the evaluator's local model runs it.

Every seed-tools prompt opens with the same ~920-token system turn (the tools block), and every BFCL
prompt with the same ~75 tokens of template: re-encoding that for each item was most of an evaluation's
time on a CPU. Here prompts are sorted so that those sharing a beginning sit together, a batch's shared
beginning is encoded once (and reused by the next batches that share it), its KV cache is copied to each
row, and each row's own tokens follow it with pads in between (masked out; positions count real tokens
only, so every row sees exactly what it would alone). A row leaves the batch when it ends, so one long
answer does not keep finished rows computing. Each layer's keys and values sit in a buffer with room for the
whole answer: transformers' default cache concatenates them anew at every token, which was 60% of a decoding
step here with 16 rows of 950 tokens (BENCHMARKS.md, "evaluate").

Greedy decoding is deterministic: each row's tokens are the ones `model.generate(do_sample=False)` picks
for that prompt alone (tests/unit/test_eval_generation.py compares them).
"""

from __future__ import annotations

import copy
import functools
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

# A shared beginning shorter than this is not worth a cache of its own (a copy per row costs more).
MIN_SHARED = 16


@dataclass
class Generated:
    ids: list[int]  # the new tokens, the stop token included when it stopped
    stopped: bool  # ended with a stop token (else it ran into max_new_tokens)
    seconds: float = 0.0  # the time of its batch (each row waits for the whole batch)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def shared_beginning(prompts: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all `prompts` (two or more) have in common."""
    return min(common_prefix(prompts[0], p) for p in prompts[1:])


def forward(model: Any, cache: Any, **inputs: Any) -> tuple[Any, Any]:
    """(logits, the KV cache after these inputs). transformers 5 renamed `past_key_values` to `cache`."""
    if _takes_cache(type(model)):
        out = model(**inputs, cache=cache, use_cache=True)
        return out.logits, out.cache
    out = model(**inputs, past_key_values=cache, use_cache=True)
    return out.logits, out.past_key_values


@functools.cache
def _takes_cache(cls: type) -> bool:
    return "cache" in inspect.signature(cls.forward).parameters


class _SharedPrefix:
    """The KV cache of the last shared beginning encoded, kept for the batches after it."""

    def __init__(self, model: Any) -> None:
        self.model, self.ids, self.cache = model, [], None

    def cache_for(self, prefix: list[int]) -> Any:
        """A fresh copy of the KV cache of `prefix` (encoded from what is kept, where it begins alike)."""
        shared = common_prefix(self.ids, prefix)
        if self.cache is not None and shared >= MIN_SHARED:
            if shared < len(self.ids):  # keep only the part this batch shares too
                self.cache.crop(shared - len(self.ids))
                self.ids = self.ids[:shared]
            cache = copy.deepcopy(self.cache)
            rest = prefix[shared:]
        else:
            cache, rest = None, prefix
            self.ids, self.cache = [], None
        if rest:
            ids = torch.tensor([rest], device=self.model.device)
            positions = torch.arange(len(prefix) - len(rest), len(prefix), device=self.model.device)[None]
            # Only the cache is wanted: the logits of a 920-token beginning over a 49k vocabulary cost ~0.7 s on a CPU.
            _, cache = forward(self.model, cache, input_ids=ids, position_ids=positions, logits_to_keep=1)
        if self.cache is None:
            self.ids, self.cache = list(prefix), copy.deepcopy(cache)
        return cache


def greedy(model: Any, prompts: list[list[int]], *, max_new_tokens: int, stop_ids: set[int], pad_id: int,
           batch_size: int = 8, on_batch: Callable[[int], None] | None = None) -> list[Generated]:
    """Greedy continuations of token-id prompts, in the prompts' order. `on_batch(rows)` is called after
    each batch with the number of prompts it held."""
    order = sorted(range(len(prompts)), key=lambda i: prompts[i])
    out: list[Generated | None] = [None] * len(prompts)
    kept = _SharedPrefix(model)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        t0 = time.perf_counter()
        with torch.inference_mode():
            generated = _batch(model, [prompts[i] for i in batch], kept, max_new_tokens, stop_ids, pad_id)
        seconds = time.perf_counter() - t0
        for i, row in zip(batch, generated, strict=True):
            row.seconds = seconds
            out[i] = row
        if on_batch:
            on_batch(len(batch))
    return [g for g in out if g is not None]


def _batch(model: Any, rows: list[list[int]], kept: _SharedPrefix, max_new_tokens: int, stop_ids: set[int],
           pad_id: int) -> list[Generated]:
    device = model.device
    # The shared beginning leaves every row at least one token of its own (the one whose logits come first).
    shared = min(len(r) for r in rows) - 1
    for r in rows[1:]:
        shared = min(shared, common_prefix(rows[0], r))
    if shared < MIN_SHARED:
        shared = 0
    tails = [r[shared:] for r in rows]
    width = max(len(t) for t in tails)
    cache = _cache(model, shared + width + max_new_tokens)
    if shared:
        for layer, (keys, values) in zip(cache.layers, _layers(kept.cache_for(rows[0][:shared])), strict=True):
            layer.update(keys.expand(len(rows), -1, -1, -1), values.expand(len(rows), -1, -1, -1))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((len(rows), shared + width), dtype=torch.long, device=device)
    mask[:, :shared] = 1
    for j, tail in enumerate(tails):
        ids[j, width - len(tail):] = torch.tensor(tail, device=device)
        mask[j, shared + width - len(tail):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
    new: list[list[int]] = [[] for _ in rows]
    stopped = [False] * len(rows)
    live = list(range(len(rows)))  # rows still generating, in the batch's current order
    for _ in range(max_new_tokens):
        logits, cache = forward(model, cache, input_ids=ids, attention_mask=mask, position_ids=positions,
                                logits_to_keep=1)
        picked = logits[:, -1].argmax(-1).tolist()
        going = []
        for slot, (row, token) in enumerate(zip(live, picked, strict=True)):
            new[row].append(token)
            if token in stop_ids:
                stopped[row] = True
            else:
                going.append(slot)
        if not going:
            break
        if len(going) < len(live):
            keep = torch.tensor(going, device=device)
            cache.batch_select_indices(keep)
            mask, positions = mask[keep], positions[keep]
            picked = [picked[s] for s in going]
            live = [live[s] for s in going]
        ids = torch.tensor(picked, device=device)[:, None]
        mask = torch.cat([mask, mask.new_ones((len(live), 1))], dim=-1)
        positions = positions[:, -1:] + 1
    return [Generated(n, s) for n, s in zip(new, stopped, strict=True)]


def _layers(cache: Any) -> list[tuple[Any, Any]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


class InPlaceLayer(DynamicLayer):
    """A DynamicLayer whose keys and values are views of buffers with room to grow, so appending a token writes
    it where it goes instead of copying every earlier one (after rows leave the batch, the next append copies
    what is left into a new buffer once)."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        self.keys = _append(self.keys, key_states, self.capacity)
        self.values = _append(self.values, value_states, self.capacity)
        return self.keys, self.values


def _cache(model: Any, capacity: int) -> Cache:
    """An empty KV cache whose layers append in place (room for `capacity` tokens per row)."""
    layers = model.config.get_text_config(decoder=True).num_hidden_layers
    return Cache(layers=[InPlaceLayer(capacity) for _ in range(layers)])


def _append(cached: Any, new: Any, capacity: int) -> Any:
    length = cached.shape[-2] if cached.dim() == 4 else 0
    end = length + new.shape[-2]
    base = cached._base if cached.dim() == 4 and cached._base is not None else None
    if base is None or base.shape[:2] != new.shape[:2] or base.shape[-2] < end:
        base = torch.empty((*new.shape[:2], max(capacity, end), new.shape[-1]), dtype=new.dtype, device=new.device)
        if length:
            base[:, :, :length] = cached
    base[:, :, length:end] = new
    return base[:, :, :end]
