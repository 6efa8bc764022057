"""`kubetune-job train`: one SFT stage, from prepared data to a published adapter and merged model.

Order of work is chosen so that cheap checks fail first and nothing is half-written: the store is
checked, the dataset found and tokenized, and the model loaded before any artifact is written; the
adapter and merged model are published whole (with `_COMPLETE`) only after training finished.
A second run with the same flags resumes from the newest complete checkpoint, or, when the stage
already succeeded, does nothing and exits 0.

Under torchrun (`contract.launch`, `distributed`) every rank runs this: rank 0 chooses the checkpoint and
the others resume from the same one; rank 0 alone publishes checkpoints, progress, the adapter and the
merged model (the other ranks' store is read-only). The batch plan: an optimizer step covers
`--global-batch` rows, else batch size × grad accum × world size at a fresh start, else (resumed) the
global batch the checkpoint was trained with, so the global step and the data order stay the same when a
run resumes with another world size; each rank accumulates global / (batch size × world size).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .. import models, storage
from ..contract import records
from ..contract.launch import accumulation
from ..contract.layout import ADAPTER_DIR, MERGED_DIR, PROGRESS_FILE, TRAIN_FILE
from ..contract.options import TrainOptions
from . import backend as backends
from .checkpoints import CheckpointStore, Preemption, Publisher
from .data import DataError, load_datasets
from .distributed import World
from .export import export
from .progress import Progress

log = logging.getLogger(__name__)


def _recorded(output: storage.Location) -> records.Progress | None:
    try:
        return records.read(records.Progress, output.child(PROGRESS_FILE).read_bytes())
    except FileNotFoundError:
        return None


def _already_done(output: storage.Location, cfg: TrainOptions) -> bool:
    """The stage succeeded before with these very inputs (same fingerprint) and its outputs are published."""
    state = _recorded(output)
    if state is None or state.state != "succeeded" or state.fingerprint != cfg.fingerprint:
        return False
    return output.child(ADAPTER_DIR).is_complete_dir() and (
        not cfg.merge or output.child(MERGED_DIR).is_complete_dir())


def _previous_eval_loss(output: storage.Location) -> float | None:
    # A resumed run does not evaluate before training again; the first run's figure is carried over.
    try:
        state = _recorded(output)
    except storage.StorageError:
        return None
    return state.eval_loss_start if state is not None else None


def batch_plan(cfg: TrainOptions, world: World, recorded: dict[str, Any]) -> dict[str, int]:
    """{global_batch, grad_accum, world_size}: see the module docstring. `recorded` is what the resumed
    checkpoint records (empty at a fresh start)."""
    if cfg.global_batch is not None:
        global_batch, what = cfg.global_batch, "--global-batch"
    elif isinstance(recorded.get("global_batch"), int):
        global_batch = recorded["global_batch"]
        what = (f"the global batch of the checkpoint (trained by {recorded.get('world_size')} ranks), "
                "which a resumed run keeps:")
    else:
        global_batch, what = cfg.batch_size * cfg.grad_accum * world.size, "--global-batch"
    accum = accumulation(global_batch, cfg.batch_size, world.size, what=what)
    return {"global_batch": global_batch, "grad_accum": accum, "world_size": world.size}


def _sft_config(cfg: TrainOptions, workdir: Path, prec: backends.Precision, backend: str, has_eval: bool,
                plan: dict[str, int], eval_on_start: bool) -> Any:
    from trl import SFTConfig

    gc = backends.gradient_checkpointing(cfg) and backend == "trl"  # Unsloth does its own checkpointing
    distributed: dict[str, Any] = {}
    if plan["world_size"] > 1:
        # LoRA trains the same adapter weights on every step: no unused-parameter search (it costs a pass).
        distributed["ddp_find_unused_parameters"] = False
        if cfg.distribution == "fsdp":
            # LoRA mixes frozen and trainable weights in one layer: FSDP must keep the original parameters.
            distributed.update(fsdp="full_shard auto_wrap", fsdp_config={"use_orig_params": True})
    return SFTConfig(
        # The declared hyperparameters that SFTConfig takes as they are (contract.hyperparams: `sft`).
        **cfg.trainer_arguments("sft"),
        # What the job resolves for this machine, this world size and this data.
        output_dir=str(workdir / "trainer"),
        gradient_accumulation_steps=plan["grad_accum"],
        optim=backends.optimizer(cfg.optim),
        bf16=prec.name == "bf16",
        fp16=prec.name == "fp16",
        use_cpu=not backends.cuda_available(),  # transformers refuses bf16 autocast on CPU without it
        gradient_checkpointing=gc,
        gradient_checkpointing_kwargs={"use_reentrant": False} if gc else None,
        save_strategy="steps",
        save_total_limit=1,  # local copies only; the store keeps --keep-checkpoints
        eval_strategy="steps" if has_eval and cfg.eval_steps else "no",
        eval_steps=cfg.eval_steps or None,
        # The loss before any training, measured inside train(): an evaluate() before it would mark the model
        # prepared, and accelerate would then never wrap it in DDP (every rank training its own copy).
        eval_on_start=eval_on_start,
        logging_steps=cfg.logging_steps,
        report_to="none",
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        **distributed,
    )


def run(args: TrainOptions) -> int:
    cfg = args
    cfg.validate()
    world = World.from_env()
    output, data = storage.location(cfg.output), storage.location(cfg.data)
    if not world.is_main:
        output = storage.ReadOnlyLocation(output, world.name)
    output.check()
    data.check()
    if _already_done(output, cfg):
        if world.is_main:
            print(f"kubetune-job train: {output.uri} already holds a finished stage; nothing to do")
        return 0
    if not data.child(TRAIN_FILE).exists():
        raise DataError(f"missing dataset: {data.child(TRAIN_FILE).uri} does not exist")

    backend = backends.choose(cfg.backend, cfg.distribution, world.size)
    world.init()
    backends.prepare(backend)  # before anything below imports transformers
    # Rank 0's: a probe on each rank could come out differently, and all ranks must train alike.
    prec = world.broadcast(backends.precision(cfg.precision) if world.is_main else None)
    base_path = models.resolve(cfg.model)
    tokenizer = backends.load_tokenizer(base_path, cfg.model)
    train_ds, eval_ds, stats = load_datasets(cfg.data, tokenizer, cfg.max_seq_length)
    log.info("data: %d training rows (%d tokens, %d dropped), %d eval rows", stats["train_rows"],
             stats["train_tokens"], stats["train_dropped"], stats["eval_rows"])

    store = CheckpointStore(output, cfg.keep_checkpoints, cfg.fingerprint)
    resume_step = world.broadcast(store.latest() if world.is_main else None)  # one checkpoint for all ranks
    plan = batch_plan(cfg, world, store.recorded(resume_step) if resume_step is not None else {})
    store.batch_plan = {"global_batch": plan["global_batch"], "world_size": world.size}
    import torch

    torch.manual_seed(cfg.seed)  # the adapter's initial weights: the same on every run (DDP copies rank 0's)
    model, backend_tokenizer = backends.load_model(cfg, backend, base_path, prec)
    log.info("backend %s, model %s, %s, precision %s: %s", backend, cfg.model, world.name, prec.name, prec.reason)

    # Read before this process writes progress.json (its first update replaces the whole record).
    carried = _previous_eval_loss(output) if resume_step is not None else None
    progress = Progress(output, cfg.pushgateway, cfg.run_name, cfg.stage_name, cfg.fingerprint, cfg.namespace,
                        publish=world.is_main)
    progress.update(world_size=world.size, batch_size=cfg.batch_size, grad_accum=plan["grad_accum"],
                    effective_batch=plan["global_batch"], distribution=cfg.distribution if world.size > 1 else None,
                    precision=prec.name, precision_reason=prec.reason, eval_loss_start=carried)
    if world.is_main:
        log.info("effective batch %d = %d per device x %d accumulation x %d ranks", plan["global_batch"],
                 cfg.batch_size, plan["grad_accum"], world.size)
    preemption = Preemption()
    preemption.install()
    try:
        with tempfile.TemporaryDirectory(prefix="kubetune-train-") as tmp:
            publisher = Publisher(store, Path(tmp) / "publishing") if world.is_main else None
            try:
                return _train(cfg, backend, prec, base_path, model, backend_tokenizer or tokenizer, train_ds,
                              eval_ds, store, publisher, resume_step, progress, preemption, output, Path(tmp),
                              world, plan)
            except Exception:
                # A checkpoint still uploading is the one the next attempt resumes from: let it land.
                _drain(publisher, progress, fatal=False)
                raise
            finally:
                if publisher is not None:
                    publisher.close()
    except BaseException as exc:
        progress.update(state="failed", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    finally:
        preemption.uninstall()


def _train(cfg: TrainOptions, backend: str, prec: backends.Precision, base_path: str, model: Any, tokenizer: Any,
           train_ds: Any, eval_ds: Any, store: CheckpointStore, publisher: Publisher | None,
           resume_step: int | None, progress: Progress, preemption: Preemption, output: storage.Location,
           workdir: Path, world: World, plan: dict[str, int]) -> int:
    from . import checkpoints
    from . import progress as progress_mod
    from .trainer import trainer_class

    trainer = trainer_class(backend)(
        model=model,
        args=_sft_config(cfg, workdir, prec, backend, eval_ds is not None, plan,
                         eval_on_start=eval_ds is not None and resume_step is None),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        callbacks=[progress_mod.make_callback(progress),
                   checkpoints.make_callback(publisher, preemption, progress, world)],
    )
    resume_path = None
    if resume_step is not None:
        resume_path = str(store.download(resume_step, workdir / "resume"))
        log.info("resuming from checkpoint step %d (%s)", resume_step, store.root.child(f"step-{resume_step}").uri)
        progress.update(checkpoint=store.root.child(checkpoints.step_dir_name(resume_step)).uri)
    if world.any(preemption.requested):
        progress.update(state="preempted")
        print(f"kubetune-job train: {_stop_reason(preemption)} before training started; nothing to save",
              file=sys.stderr)
        return preemption.exit_code

    started = time.monotonic()
    trainer.train(resume_from_checkpoint=resume_path)
    step = trainer.state.global_step
    if world.any(preemption.requested) and step < trainer.state.max_steps:
        _drain(publisher, progress, fatal=True)  # "run again to resume" must be true
        progress.update(state="preempted", step=step)
        if world.is_main:
            print(f"kubetune-job train: stopped by {_stop_reason(preemption)} at step {step}; checkpoint "
                  "published, run again to resume", file=sys.stderr)
        return preemption.exit_code

    if eval_ds is not None:
        progress.update(eval_loss=trainer.evaluate()["eval_loss"])
    _drain(publisher, progress, fatal=False)  # the export is what matters now; a lost checkpoint is logged
    gathered = None
    if world.size > 1 and cfg.distribution == "fsdp":
        # The adapter is sharded across the ranks: the Trainer gathers it (every rank takes part), rank 0 writes.
        gathered = workdir / "gathered-adapter"
        trainer.save_model(str(gathered))
    world.close()  # every rank trained and evaluated; rank 0 exports alone
    if not world.is_main:
        return 0
    progress.update(state="exporting", step=step)
    trainer_model = None if gathered is not None else trainer.model
    del trainer
    export(trainer_model, tokenizer, backend=backend, base_path=base_path, prec=prec, merge=cfg.merge,
           output=output, workdir=workdir / "export", saved_adapter=gathered)
    progress.update(state="succeeded", eta_seconds=0)
    _summary(cfg, progress.data, time.monotonic() - started, output)
    return 0


def _stop_reason(preemption: Preemption) -> str:
    return preemption.signal.name if preemption.signal is not None else "a stop request of another rank"


def _drain(publisher: Publisher | None, progress: Progress, *, fatal: bool) -> None:
    """Wait for the checkpoint publisher and name its newest complete checkpoint in progress.json."""
    if publisher is None:
        return
    try:
        publisher.drain()
    except storage.StorageError as exc:
        if fatal:
            raise
        log.error("%s", exc)
    done = publisher.newly_published()
    if done is not None:
        progress.update(checkpoint=done[1])


def _summary(cfg: TrainOptions, p: dict[str, Any], seconds: float, output: storage.Location) -> None:
    def fmt(x: Any) -> str:
        return f"{x:.4f}" if isinstance(x, float) else str(x)

    lines = [
        f"stage {cfg.stage_name} of run {cfg.run_name}: trained {cfg.model}",
        f"  steps        {p['step']}/{p['total']} (started at {p['start_step']}) in {seconds:.0f}s",
        f"  loss         {fmt(p['loss'])}",
        f"  eval loss    {fmt(p['eval_loss_start'])} -> {fmt(p['eval_loss'])}",
        f"  tokens/s     {fmt(p['tokens_per_second'])}",
        f"  precision    {p['precision']} ({p['precision_reason']})",
        f"  adapter      {output.child(ADAPTER_DIR).uri}",
    ]
    if cfg.merge:
        lines.append(f"  merged       {output.child(MERGED_DIR).uri}")
    print("\n".join(lines))
