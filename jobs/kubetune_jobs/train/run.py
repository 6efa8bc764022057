"""`kubetune-job train`: one SFT stage, from prepared data to a published adapter and merged model.

Order of work is chosen so that cheap checks fail first and nothing is half-written: the store is
checked, the dataset found and tokenized, and the model loaded before any artifact is written; the
adapter and merged model are published whole (with `_COMPLETE`) only after training finished.
A second run with the same flags resumes from the newest complete checkpoint, or, when the stage
already succeeded, does nothing and exits 0.
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
from ..contract.layout import ADAPTER_DIR, MERGED_DIR, PROGRESS_FILE, TRAIN_FILE
from ..contract.options import TrainOptions
from . import backend as backends
from .checkpoints import CheckpointStore, Preemption, Publisher
from .data import DataError, load_datasets
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


def _sft_config(cfg: TrainOptions, workdir: Path, prec: backends.Precision, backend: str, has_eval: bool) -> Any:
    from trl import SFTConfig

    gc = backends.gradient_checkpointing(cfg) and backend == "trl"  # Unsloth does its own checkpointing
    return SFTConfig(
        output_dir=str(workdir / "trainer"),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float below 1 is a fraction of the total steps
        weight_decay=cfg.weight_decay,
        optim=backends.optimizer(cfg.optim),
        bf16=prec.name == "bf16",
        fp16=prec.name == "fp16",
        use_cpu=not backends.cuda_available(),  # transformers refuses bf16 autocast on CPU without it
        gradient_checkpointing=gc,
        gradient_checkpointing_kwargs={"use_reentrant": False} if gc else None,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=1,  # local copies only; the store keeps --keep-checkpoints
        eval_strategy="steps" if has_eval and cfg.eval_steps else "no",
        eval_steps=cfg.eval_steps or None,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        max_length=cfg.max_seq_length,
        packing=cfg.packing,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
    )


def run(args: TrainOptions) -> int:
    cfg = args
    cfg.validate()
    output, data = storage.location(cfg.output), storage.location(cfg.data)
    output.check()
    data.check()
    if _already_done(output, cfg):
        print(f"kubetune-job train: {output.uri} already holds a finished stage; nothing to do")
        return 0
    if not data.child(TRAIN_FILE).exists():
        raise DataError(f"missing dataset: {data.child(TRAIN_FILE).uri} does not exist")

    backend = backends.choose(cfg.backend)
    backends.prepare(backend)  # before anything below imports transformers
    prec = backends.precision(cfg.precision)
    base_path = models.resolve(cfg.model)
    tokenizer = backends.load_tokenizer(base_path, cfg.model)
    train_ds, eval_ds, stats = load_datasets(cfg.data, tokenizer, cfg.max_seq_length)
    log.info("data: %d training rows (%d tokens, %d dropped), %d eval rows", stats["train_rows"],
             stats["train_tokens"], stats["train_dropped"], stats["eval_rows"])

    store = CheckpointStore(output, cfg.keep_checkpoints, cfg.fingerprint)
    resume_step = store.latest()
    model, backend_tokenizer = backends.load_model(cfg, backend, base_path, prec)
    log.info("backend %s, precision %s, model %s", backend, prec.name, cfg.model)

    progress = Progress(output, cfg.pushgateway, cfg.run_name, cfg.stage_name, cfg.fingerprint)
    preemption = Preemption()
    preemption.install()
    try:
        with tempfile.TemporaryDirectory(prefix="kubetune-train-") as tmp:
            publisher = Publisher(store, Path(tmp) / "publishing")
            try:
                return _train(cfg, backend, prec, base_path, model, backend_tokenizer or tokenizer, train_ds,
                              eval_ds, store, publisher, resume_step, progress, preemption, output, Path(tmp))
            except Exception:
                # A checkpoint still uploading is the one the next attempt resumes from: let it land.
                _drain(publisher, progress, fatal=False)
                raise
            finally:
                publisher.close()
    except BaseException as exc:
        progress.update(state="failed", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    finally:
        preemption.uninstall()


def _train(cfg: TrainOptions, backend: str, prec: backends.Precision, base_path: str, model: Any, tokenizer: Any,
           train_ds: Any, eval_ds: Any, store: CheckpointStore, publisher: Publisher, resume_step: int | None,
           progress: Progress, preemption: Preemption, output: storage.Location, workdir: Path) -> int:
    from . import checkpoints
    from . import progress as progress_mod
    from .trainer import trainer_class

    trainer = trainer_class(backend)(
        model=model,
        args=_sft_config(cfg, workdir, prec, backend, eval_ds is not None),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        callbacks=[progress_mod.make_callback(progress), checkpoints.make_callback(publisher, preemption, progress)],
    )
    resume_path = None
    if resume_step is not None:
        resume_path = str(store.download(resume_step, workdir / "resume"))
        log.info("resuming from checkpoint step %d (%s)", resume_step, store.root.child(f"step-{resume_step}").uri)
        progress.update(eval_loss_start=_previous_eval_loss(output),
                        checkpoint=store.root.child(checkpoints.step_dir_name(resume_step)).uri)
    elif eval_ds is not None:
        # The loss before any training, to compare against at the end.
        progress.update(eval_loss_start=trainer.evaluate()["eval_loss"])
    if preemption.requested:
        progress.update(state="preempted")
        print(f"kubetune-job train: {preemption.signal.name} before training started; nothing to save",
              file=sys.stderr)
        return preemption.exit_code

    started = time.monotonic()
    trainer.train(resume_from_checkpoint=resume_path)
    step = trainer.state.global_step
    if preemption.requested and step < trainer.state.max_steps:
        _drain(publisher, progress, fatal=True)  # "run again to resume" must be true
        progress.update(state="preempted", step=step)
        print(f"kubetune-job train: stopped by {preemption.signal.name} at step {step}; checkpoint published, "
              "run again to resume", file=sys.stderr)
        return preemption.exit_code

    if eval_ds is not None:
        progress.update(eval_loss=trainer.evaluate()["eval_loss"])
    _drain(publisher, progress, fatal=False)  # the export is what matters now; a lost checkpoint is logged
    progress.update(state="exporting", step=step)
    trainer_model = trainer.model
    del trainer
    export(trainer_model, tokenizer, backend=backend, base_path=base_path, prec=prec, merge=cfg.merge,
           output=output, workdir=workdir / "export")
    progress.update(state="succeeded", eta_seconds=0)
    _summary(cfg, progress.data, time.monotonic() - started, output)
    return 0


def _drain(publisher: Publisher, progress: Progress, *, fatal: bool) -> None:
    """Wait for the checkpoint publisher and name its newest complete checkpoint in progress.json."""
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
        f"  adapter      {output.child(ADAPTER_DIR).uri}",
    ]
    if cfg.merge:
        lines.append(f"  merged       {output.child(MERGED_DIR).uri}")
    print("\n".join(lines))
