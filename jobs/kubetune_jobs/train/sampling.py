"""Training order: shuffled, with rows of similar length batched together inside small windows.

A batch is padded to its longest row, so mixing a 300-token row with a 1000-token one wastes most of
the short row's compute (31% of every batch of 4 on the quickstart's single-turn rows, 18% on its
conversations). transformers' own `group_by_length` sorts 50-batch megabatches longest-first, which
makes a run shorter than an epoch (the quickstart's are) train on the longest rows only. Here the
shuffled rows are cut into windows of `window` batches; inside a window rows are sorted by length,
batched, and the batches shuffled. Every window is used whole before the next, so whatever prefix of
the order a run consumes is still a uniform sample of the data, up to the last window.

Under torchrun every rank builds the same order (same seed, same epoch) and accelerate deals its batches
out in turn (rank r takes batches r, r + W, ...), so one optimizer step of W ranks accumulating a
micro-batches covers the same a·W consecutive batches one process accumulating a·W would: the data order
does not depend on the world size, and a run resumed with another one carries on where it stopped.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch


def length_grouped_order(lengths: Sequence[int], batch_size: int, window: int, seed: int) -> list[int]:
    """A permutation of `range(len(lengths))` whose consecutive `batch_size` runs have similar lengths."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * window
    out: list[int] = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start:start + span], key=lambda i: lengths[i])
        batches = [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        out += [i for batch in batches for i in batch]
    return out


class LengthWindowSampler(torch.utils.data.Sampler[int]):
    """`length_grouped_order` as a sampler; a new order each epoch, the same order for the same epoch
    (so a resumed run skips exactly the batches it had trained on)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, window: int = 8, seed: int = 0) -> None:
        self.lengths, self.batch_size, self.window, self.seed = list(lengths), batch_size, window, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        return iter(length_grouped_order(self.lengths, self.batch_size, self.window, self.seed + self.epoch))
