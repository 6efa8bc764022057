"""Checkpoints in the object store: published whole, resumed from the newest complete one, pruned.

The Trainer writes its checkpoint (adapter, optimizer, scheduler, RNG state, trainer state with the
step) into a local temporary directory; `on_save` copies it aside and a `Publisher` thread uploads it
to `<output>/checkpoints/step-<n>/` with `Location.upload_dir`, whose `_COMPLETE` manifest goes last.
Training goes on meanwhile, so a store that is away for a while (each upload retries for the storage
retry budget) costs no training time. At most one checkpoint waits behind the upload in flight: a
newer save replaces a waiting one (its state includes everything the older one held), and a publish
that finally fails is logged and superseded by the next save. Old checkpoints are pruned only after a
newer one is complete. The final export and a preemption stop wait for the publisher first.

Under torchrun every rank saves with the Trainer, but only rank 0 has a publisher: the others see the
store read-only. Each checkpoint records the global batch it was trained with (and the world size), so a
run resumed with another world size keeps what one optimizer step means (`contract.launch.accumulation`).

A directory without the manifest (an upload cut short by SIGKILL) is never resumed from and is
removed by the next prune. The store is the source of truth: a restarted pod starts with an empty
local disk.

SIGTERM (a preempted pod's grace period) and a first SIGINT (Ctrl-C under `kubetune run`) ask the
Trainer to save at the end of the current step and stop; the run then exits with 143 or 130 and the
next start resumes from that checkpoint. A second SIGINT interrupts at once. With several ranks the
request is shared at every step's end (a one-flag all-reduce), so all ranks stop after the same step even
when the signal reached them in different steps.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

from .. import storage
from ..contract.layout import CHECKPOINTS_DIR, checkpoint_dir, checkpoint_step

log = logging.getLogger(__name__)
EXIT_PREEMPTED = 143  # 128 + SIGTERM, what a shell reports for a terminated process
EXIT_INTERRUPTED = 130  # 128 + SIGINT
# Written into every checkpoint (so the completeness marker covers it): a checkpoint is resumed only by
# a run with the same step fingerprint, never by one with other data, settings or another run's uid. It
# also holds the batch plan the checkpoint was trained with (global_batch, world_size).
FINGERPRINT_FILE = "kubetune-fingerprint.json"
step_dir_name = checkpoint_dir


class CheckpointStore:
    def __init__(self, output: storage.Location, keep: int, fingerprint: str | None = None) -> None:
        self.root = output.child(CHECKPOINTS_DIR)
        self.keep = keep
        self.fingerprint = fingerprint
        self.batch_plan: dict[str, int] = {}  # recorded with every checkpoint published from now on

    def _steps(self) -> list[int]:
        return sorted(s for name in self.root.list() if (s := checkpoint_step(name)) is not None)

    def recorded(self, step: int) -> dict[str, Any]:
        """What checkpoint `step` records of how it was made (fingerprint, global_batch, world_size)."""
        try:
            recorded = json.loads(self.root.child(step_dir_name(step), FINGERPRINT_FILE).read_bytes())
        except (FileNotFoundError, ValueError):
            recorded = {}
        return recorded if isinstance(recorded, dict) else {}

    def _ours(self, step: int) -> bool:
        return self.recorded(step).get("fingerprint") == self.fingerprint

    def complete_steps(self) -> list[int]:
        """Complete checkpoints written with this fingerprint, oldest first."""
        return [s for s in self._steps() if self.root.child(step_dir_name(s)).is_complete_dir() and self._ours(s)]

    def latest(self) -> int | None:
        steps = self.complete_steps()
        return steps[-1] if steps else None

    def download(self, step: int, local_root: Path) -> Path:
        """Fetch checkpoint `step` into `local_root/checkpoint-<step>` (the Trainer's naming)."""
        # From a local store too: the Trainer only reads it, but the store's copy stays pristine.
        return self.root.child(step_dir_name(step)).download_dir(local_root / f"checkpoint-{step}", copy=True)

    def publish(self, local: Path, step: int) -> str:
        """Upload a Trainer checkpoint as step `step`, then prune; returns where it now lives."""
        target = self.root.child(step_dir_name(step))
        (Path(local) / FINGERPRINT_FILE).write_text(json.dumps({"fingerprint": self.fingerprint, **self.batch_plan}))
        target.upload_dir(local)
        log.info("checkpoint step %d published to %s", step, target.uri)
        try:
            self.prune()
        except (OSError, storage.StorageError) as exc:  # the checkpoint is complete; the next prune retries
            log.warning("could not prune old checkpoints in %s: %s", self.root.uri, exc)
        return target.uri

    def prune(self) -> None:
        complete = self.complete_steps()
        keep = set(complete[-self.keep:])
        for step in self._steps():
            if step not in keep:
                self.root.child(step_dir_name(step)).delete()


class Publisher:
    """Uploads checkpoints on one worker thread while training goes on; see the module docstring."""

    def __init__(self, store: CheckpointStore, staging: Path) -> None:
        self.store = store
        self.staging = staging
        self._cond = threading.Condition()
        self._waiting: tuple[int, Path] | None = None  # the newest save not yet being uploaded
        self._busy = False
        self._failed: tuple[int, Path] | None = None  # the newest save, whose upload gave up
        self._published: tuple[int, str] | None = None
        self._reported: int | None = None
        self._closed = False
        self._copies = 0
        staging.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._work, name="checkpoint-publisher", daemon=True)
        self._thread.start()

    def submit(self, local: Path, step: int) -> None:
        """Queue the Trainer's checkpoint `local` (copied now: the Trainer deletes it at its next save)."""
        self._copies += 1
        copy = self.staging / f"{step_dir_name(step)}.{self._copies}"  # unique: the same step may be in flight
        shutil.copytree(local, copy)
        with self._cond:
            for older in (self._waiting, self._failed):
                if older is not None:
                    if older[0] != step:
                        log.info("checkpoint step %d superseded by step %d before it was published", older[0], step)
                    shutil.rmtree(older[1], ignore_errors=True)
            self._waiting, self._failed = (step, copy), None
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._waiting is None and not self._closed:
                    self._cond.wait()
                if self._waiting is None:
                    return
                step, copy = self._waiting
                self._waiting, self._busy = None, True
            self._upload(step, copy)

    def _upload(self, step: int, copy: Path) -> None:
        try:
            uri = self.store.publish(copy, step)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, training must go on
            log.error("checkpoint step %d could not be published (%s); the next save or the end of training "
                      "publishes again", step, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            with self._cond:
                self._busy = False
                if self._waiting is None:
                    self._failed = (step, copy)
                else:
                    shutil.rmtree(copy, ignore_errors=True)
                self._cond.notify_all()
            return
        shutil.rmtree(copy, ignore_errors=True)
        with self._cond:
            self._busy = False
            if self._published is None or step >= self._published[0]:
                self._published = (step, uri)
            self._cond.notify_all()

    def newly_published(self) -> tuple[int, str] | None:
        """The newest complete checkpoint, once, when it changed since the last call."""
        with self._cond:
            if self._published is None or self._published[0] == self._reported:
                return None
            self._reported = self._published[0]
            return self._published

    def drain(self) -> tuple[int, str] | None:
        """Wait until nothing is waiting or uploading, give a failed newest save one more try, and return
        the newest complete checkpoint; StorageError if the newest save is still not in the store."""
        with self._cond:
            while self._waiting is not None or self._busy:
                self._cond.wait()
            failed, self._failed = self._failed, None
            self._busy = failed is not None
        if failed is not None:
            self._upload(*failed)
            with self._cond:
                if self._failed is not None:
                    raise storage.StorageError(f"checkpoint step {failed[0]} could not be published to "
                                               f"{self.store.root.uri}")
        return self._published

    def close(self) -> None:
        """Stop the worker once its current upload ends (an unfinished upload leaves no `_COMPLETE`)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Preemption:
    """Turns SIGTERM, and a first SIGINT, into 'save a checkpoint after this step and stop'."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def exit_code(self) -> int:
        return EXIT_INTERRUPTED if self.signal == signal.SIGINT else EXIT_PREEMPTED

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            if sig == signal.SIGINT and signal.getsignal(sig) is signal.SIG_IGN:
                continue  # whoever started us asked for Ctrl-C to be ignored (a background shell job)
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        sig = signal.Signals(signum)
        if sig == signal.SIGINT and self.signal == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: the user does not want to wait for the checkpoint
        log.warning("%s: saving a checkpoint after the current step, then stopping", sig.name)
        self.signal = self.signal or sig


def make_callback(publisher: Publisher | None, preemption: Preemption, progress: Any, world: Any = None) -> Any:
    """A TrainerCallback that hands every checkpoint the Trainer saves to `publisher` (rank 0's; None on
    the other ranks), names each one that is complete in the store in `progress`, and honours `preemption`
    on every rank of `world` (a `distributed.World`) at the same step."""
    from transformers import TrainerCallback

    from .distributed import World

    world = world or World()

    class CheckpointCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            done = publisher.newly_published() if publisher is not None else None
            if done is not None:
                progress.update(checkpoint=done[1])
            if world.any(preemption.requested):
                control.should_save = True
                control.should_training_stop = True
            return control

        def on_save(self, args, state, control, **kwargs):
            local = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if publisher is not None and local.is_dir():
                publisher.submit(local, state.global_step)
            return control

    return CheckpointCallback()
