"""The lean SFT loss is the model's own causal-LM loss, computed from fewer logits."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def _batch(vocab: int) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (3, 24), generator=g)
    labels = torch.full_like(ids, -100)
    labels[0, 10:18] = ids[0, 10:18]  # rows label different spans, as assistant turns do
    labels[1, 3:6] = ids[1, 3:6]
    labels[1, 20:24] = ids[1, 20:24]
    labels[2, 15:24] = ids[2, 15:24]
    attention = torch.ones_like(ids)
    attention[2, :4] = 0  # left padding
    return {"input_ids": ids, "attention_mask": attention, "labels": labels}


def test_labelled_loss_matches_the_models_own_loss_and_gradients(tiny_qwen2: str) -> None:
    from transformers import AutoModelForCausalLM

    from kubetune_jobs.train.trainer import labelled_loss, labelled_positions

    model = AutoModelForCausalLM.from_pretrained(tiny_qwen2, dtype=torch.float32)
    batch = _batch(model.config.vocab_size)
    # Only the positions that predict a labelled token are projected through the head.
    kept = labelled_positions(batch["labels"])
    assert kept.numel() < batch["labels"].shape[1] - 1

    reference = model(**batch).loss
    reference.backward()
    ref_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    result = labelled_loss(model, batch)
    result.loss.backward()
    assert result.loss.item() == pytest.approx(reference.item(), rel=1e-5)
    assert int(result.count) == int((batch["labels"][:, 1:] != -100).sum())
    assert result.outputs.logits.shape[1] == kept.numel()
    for ours, ref in zip((p.grad for p in model.parameters()), ref_grads, strict=True):
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6)


def test_labelled_loss_divides_by_the_accumulated_token_count(tiny_qwen2: str) -> None:
    from transformers import AutoModelForCausalLM

    from kubetune_jobs.train.trainer import labelled_loss

    model = AutoModelForCausalLM.from_pretrained(tiny_qwen2, dtype=torch.float32)
    batch = _batch(model.config.vocab_size)
    own = labelled_loss(model, batch)
    accumulated = labelled_loss(model, batch, num_items_in_batch=torch.tensor(int(own.count) * 4))
    assert accumulated.loss.item() == pytest.approx(own.loss.item() / 4, rel=1e-5)
