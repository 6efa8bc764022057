"""Checkpoint bookkeeping in the store, and the train flags' validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetune_jobs import cli, storage
from kubetune_jobs.contract.options import TrainOptions
from kubetune_jobs.train.checkpoints import CheckpointStore


def publish_fake(store: CheckpointStore, tmp: Path, step: int) -> None:
    local = tmp / f"checkpoint-{step}"
    local.mkdir()
    (local / "trainer_state.json").write_text(f'{{"global_step": {step}}}')
    store.publish(local, step)


def test_latest_ignores_incomplete_and_prune_keeps_newest(tmp_path: Path) -> None:
    out = storage.location(tmp_path / "stage")
    store = CheckpointStore(out, keep=2)
    assert store.latest() is None
    for step in (2, 4):
        publish_fake(store, tmp_path, step)
    # An upload cut short: files but no _COMPLETE manifest, and a newer step than any complete one.
    out.child("checkpoints", "step-9", "adapter_model.safetensors").write_bytes(b"partial")
    assert store.latest() == 4
    publish_fake(store, tmp_path, 6)
    assert store.complete_steps() == [4, 6]
    assert out.child("checkpoints").list() == ["step-4", "step-6"]  # step-2 pruned, step-9 removed
    restored = store.download(6, tmp_path / "resume")
    assert restored.name == "checkpoint-6" and (restored / "trainer_state.json").exists()


def _config(args) -> TrainOptions:
    cfg = TrainOptions.from_namespace(args)
    cfg.validate()
    return cfg


def test_flags_map_onto_the_config() -> None:
    args = cli.build_parser().parse_args(
        ["train", "--model", "m", "--data", "d", "--output", "o", "--target-modules", "q_proj, v_proj"])
    cfg = _config(args)
    assert cfg.target_modules == ("q_proj", "v_proj")
    assert (cfg.lora_r, cfg.lora_alpha, cfg.batch_size, cfg.grad_accum, cfg.learning_rate) == (16, 16, 4, 4, 2e-4)


@pytest.mark.parametrize("flags, message", [
    (["--max-steps", "0"], "--max-steps"),
    (["--save-steps", "0"], "--save-steps"),
    (["--warmup-ratio", "1.5"], "--warmup-ratio"),
    (["--target-modules", ","], "--target-modules"),
])
def test_bad_flags_are_named(flags: list[str], message: str) -> None:
    args = cli.build_parser().parse_args(["train", "--model", "m", "--data", "d", "--output", "o", *flags])
    with pytest.raises(ValueError, match=message):
        _config(args)
