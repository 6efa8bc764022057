"""`--packing`: rows packed into one padding-free sequence stay whole, keep their assistant-only labels,
and do not see each other (the packed loss equals the rows' own losses), on the attention this machine
uses (SDPA on CPU, no flash-attention)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetune_jobs import cli
from kubetune_jobs.train.data import IGNORE_INDEX

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "toolcalls"
pytestmark = pytest.mark.slow


def test_packed_rows_keep_their_labels_and_do_not_attend_to_each_other(tiny_qwen2: str, tmp_path: Path) -> None:
    import torch

    from kubetune_jobs.contract.options import TrainOptions
    from kubetune_jobs.train import backend as backends
    from kubetune_jobs.train.data import load_datasets
    from kubetune_jobs.train.distributed import World
    from kubetune_jobs.train.run import _sft_config, batch_plan

    args = cli.build_parser().parse_args(["train", "--model", tiny_qwen2, "--data", str(DATA), "--output",
                                          str(tmp_path / "out"), "--packing", "--batch-size", "4",
                                          "--max-seq-length", "1024", "--precision", "fp32",
                                          "--no-load-in-4bit"])
    cfg = TrainOptions.from_namespace(args)
    backends.prepare("trl")
    tokenizer = backends.load_tokenizer(tiny_qwen2, tiny_qwen2)
    train_ds, _, _ = load_datasets(str(DATA), tokenizer, cfg.max_seq_length)
    prec = backends.Precision("fp32")
    model, _ = backends.load_model(cfg, "trl", tiny_qwen2, prec)

    from kubetune_jobs.train.trainer import labelled_loss, trainer_class

    trainer = trainer_class("trl")(model=model, args=_sft_config(cfg, tmp_path, prec, "trl", False,
                                                                       batch_plan(cfg, World(), {}), False),
                                   train_dataset=train_ds, processing_class=tokenizer)
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch  # padding-free

    originals = {tuple(r["input_ids"]): r["labels"] for r in train_ds}
    positions = batch["position_ids"][0]
    starts = [*(positions == 0).nonzero().flatten().tolist(), positions.numel()]
    segments = list(zip(starts, starts[1:], strict=False))
    assert len(segments) >= 4
    for a, b in segments:
        ids = tuple(batch["input_ids"][0, a:b].tolist())
        assert ids in originals  # a whole row, not a cut
        labels = batch["labels"][0, a:b].tolist()
        assert labels == originals[ids]  # assistant-only labels survive packing
        assert IGNORE_INDEX in labels and any(x != IGNORE_INDEX for x in labels)

    model.eval()
    with torch.no_grad():
        packed = labelled_loss(model, batch)
        total, count = 0.0, 0
        for a, b in segments:
            one = labelled_loss(model, {"input_ids": batch["input_ids"][:, a:b], "labels": batch["labels"][:, a:b]})
            total += float(one.loss) * int(one.count)
            count += int(one.count)
        # The same tokens as one plain causal sequence: rows would see their predecessors.
        leaky = labelled_loss(model, {"input_ids": batch["input_ids"], "labels": batch["labels"]})
    assert int(packed.count) == count
    assert float(packed.loss) == pytest.approx(total / count, abs=1e-5)
    assert abs(float(leaky.loss) - total / count) > 1e-4  # the model is context-sensitive: the check above bites
