"""Training order: length-grouped batches inside shuffled windows, without biasing a partial epoch."""

from __future__ import annotations

import random

from kubetune_jobs.train.sampling import LengthWindowSampler, length_grouped_order


def _padding(order: list[int], lengths: list[int], batch: int) -> float:
    batches = [order[i:i + batch] for i in range(0, len(order), batch)]
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    return 1 - sum(lengths) / padded


def test_order_is_a_permutation_with_far_less_padding() -> None:
    rng = random.Random(1)
    lengths = [rng.randint(250, 1100) for _ in range(301)]  # the quickstart's spread, not a multiple of 4
    order = length_grouped_order(lengths, batch_size=4, window=8, seed=3)
    assert sorted(order) == list(range(301))
    shuffled = list(range(301))
    random.Random(3).shuffle(shuffled)
    assert _padding(order, lengths, 4) < 0.5 * _padding(shuffled, lengths, 4)


def test_every_prefix_of_whole_windows_is_the_same_rows_as_a_plain_shuffle() -> None:
    # A run shorter than an epoch must see a uniform sample, not the longest (or shortest) rows.
    lengths = list(range(1000, 0, -1))
    order = length_grouped_order(lengths, batch_size=4, window=8, seed=7)
    shuffled = list(range(1000))
    random.Random(7).shuffle(shuffled)
    for windows in (1, 2, 5):
        span = 32 * windows
        assert set(order[:span]) == set(shuffled[:span])
    first = [lengths[i] for i in order[:128]]
    assert 300 < sum(first) / len(first) < 700  # a uniform sample's mean is ~500


def test_sampler_repeats_an_epoch_and_reshuffles_the_next() -> None:
    sampler = LengthWindowSampler([5, 9, 2, 7, 3, 8, 1, 6], batch_size=2, window=2, seed=0)
    first = list(sampler)
    assert list(sampler) == first and len(sampler) == 8
    sampler.set_epoch(1)
    assert sorted(sampler) == list(range(8)) and list(sampler) != first


def _rank_batches(order_source: LengthWindowSampler, batch: int, world: int, rank: int, epoch: int = 0) -> list:
    """The batches rank `rank` of `world` trains on, as accelerate shards the Trainer's DataLoader."""
    import torch
    from accelerate.data_loader import prepare_data_loader

    order_source.set_epoch(epoch)
    loader = torch.utils.data.DataLoader(list(range(len(order_source))), batch_size=batch, sampler=order_source)
    sharded = prepare_data_loader(loader, num_processes=world, process_index=rank, put_on_device=False)
    sharded.set_epoch(epoch)
    return [b.tolist() for b in sharded]


def test_ranks_share_each_optimizer_step_as_one_process_would_at_any_world_size() -> None:
    """One optimizer step covers the same rows whether 1, 2 or 4 ranks train it (accumulation scaled so the
    global batch stays 16), so a run resumed with another world size goes on in the same data order."""
    rng = random.Random(5)
    lengths = [rng.randint(50, 900) for _ in range(256)]
    batch, global_batch = 2, 16

    def steps(world: int, epoch: int) -> list[set[int]]:
        per_rank = [_rank_batches(LengthWindowSampler(lengths, batch, seed=9), batch, world, r, epoch)
                    for r in range(world)]
        accum = global_batch // (batch * world)
        micro = list(zip(*per_rank, strict=True))  # micro-step i: one batch from every rank
        return [{row for group in micro[i:i + accum] for b in group for row in b}
                for i in range(0, len(micro), accum)]

    for epoch in (0, 1):
        one = steps(1, epoch)
        assert all(len(s) == global_batch for s in one) and len(one) == 256 // global_batch
        assert steps(2, epoch) == one and steps(4, epoch) == one
    assert steps(1, 0) != steps(1, 1)  # a new order each epoch, on every rank alike
