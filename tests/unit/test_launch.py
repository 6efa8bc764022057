"""The torchrun command line and the batch arithmetic shared by the Job, `kubetune run` and every rank; the
read-only store the ranks other than 0 get."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kubetune_jobs import storage
from kubetune_jobs.contract.launch import (
    JOB_MODULE,
    MASTER_ADDR_ENV,
    NODE_RANK_ENV,
    BatchPlanError,
    Launch,
    accumulation,
    rendezvous_env,
)


def torchrun_parse(argv: list[str], environ: dict[str, str]) -> argparse.Namespace:
    """torchrun's own parser (the flags and its PET_* environment), without running anything."""
    import os

    from torch.distributed.run import get_args_parser

    saved = dict(os.environ)
    os.environ.update(environ)
    try:
        return get_args_parser().parse_args(argv)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_one_node_rendezvouses_by_itself_and_runs_the_job_module() -> None:
    args = torchrun_parse([*Launch(nproc_per_node=4).torchrun_args(), "train", "--model", "m"], {})
    assert (args.nnodes, args.nproc_per_node, args.standalone, args.max_restarts) == ("1", "4", True, 0)
    assert args.module and args.training_script == JOB_MODULE and args.training_script_args[:2] == ["train", "--model"]


def test_several_nodes_take_rank_and_master_from_the_environment() -> None:
    launch = Launch(nproc_per_node=8, nnodes=3)
    assert launch.world_size == 24 and launch.distributed and not Launch().distributed
    env = {**rendezvous_env("run-train-0.run-train"), NODE_RANK_ENV: "2"}
    args = torchrun_parse([*launch.torchrun_args(), "train"], env)
    assert (args.nnodes, args.node_rank, args.master_addr, args.master_port) == ("3", 2, "run-train-0.run-train", 29500)
    assert not args.standalone and args.rdzv_backend == "static" and MASTER_ADDR_ENV in env


def test_accumulation_covers_the_global_batch_or_names_the_field() -> None:
    assert accumulation(16, 4, 1) == 4 and accumulation(16, 4, 2) == 2 and accumulation(16, 4, 4) == 1
    with pytest.raises(BatchPlanError, match=r"spec.training.globalBatchSize 16 .* \(4 × 8 = 32\)"):
        accumulation(16, 4, 8, what="spec.training.globalBatchSize")
    with pytest.raises(BatchPlanError, match="--global-batch 18"):
        accumulation(18, 4, 2)


def test_read_only_store_reads_and_refuses_every_write(tmp_path: Path) -> None:
    inner = storage.location(tmp_path)
    inner.child("progress.json").write_text("{}")
    ro = storage.ReadOnlyLocation(inner, "rank 1 of 2")
    assert ro.child("progress.json").read_text() == "{}" and ro.list() == ["progress.json"]
    for write in (lambda: ro.child("x").write_json({}), lambda: ro.child("progress.json").delete(),
                  lambda: ro.child("d").upload_dir(tmp_path)):
        with pytest.raises(storage.ReadOnlyError, match="rank 1 of 2 may not .* only rank 0 writes"):
            write()
    assert inner.list() == ["progress.json"] and inner.child("progress.json").read_text() == "{}"


def test_train_options_refuse_impossible_distribution_settings() -> None:
    from kubetune_jobs.contract.options import TrainOptions

    base = {"model": "m", "data": "d", "output": "o"}
    with pytest.raises(ValueError, match="--distribution fsdp cannot shard 4-bit"):
        TrainOptions(**base, distribution="fsdp").validate()  # the reference run is QLoRA
    with pytest.raises(ValueError, match="--global-batch must be at least 1"):
        TrainOptions(**base, global_batch=0, load_in_4bit=False).validate()
    opts = TrainOptions(**base, distribution="fsdp", global_batch=16, load_in_4bit=False)
    opts.validate()
    assert TrainOptions.parse(opts.command_line()[1:]) == opts


def test_ranks_on_one_node_share_its_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from kubetune_jobs import runtime

    before = torch.get_num_threads()
    monkeypatch.delenv("KUBETUNE_THREADS", raising=False)
    monkeypatch.setattr(runtime, "cpu_budget", lambda: 8)
    try:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
        assert runtime.configure_threads() == 4 == torch.get_num_threads()
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
        assert runtime.configure_threads() == 1
        monkeypatch.delenv("LOCAL_WORLD_SIZE")
        assert runtime.configure_threads() == 8
    finally:
        torch.set_num_threads(before)
