"""Checkpoints in the object store: published whole, resumed from the newest complete one, pruned.

The Trainer writes its checkpoint (adapter, optimizer, scheduler, RNG state, trainer state with the
step) into a local temporary directory; `on_save` publishes it to `<output>/checkpoints/step-<n>/`
with `Location.upload_dir`, whose `_COMPLETE` manifest goes last. A directory without the manifest
(an upload cut short by SIGKILL) is never resumed from and is removed by the next prune. The store is
the source of truth: a restarted pod starts with an empty local disk.

SIGTERM (a preempted pod's grace period) and a first SIGINT (Ctrl-C under `kubetune run`) ask the
Trainer to save at the end of the current step and stop; the run then exits with 143 or 130 and the
next start resumes from that checkpoint. A second SIGINT interrupts at once.
"""

from __future__ import annotations

import logging
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import storage

log = logging.getLogger(__name__)
CHECKPOINTS_DIR = "checkpoints"
# ASCII digits only, and few enough that int() cannot choke: the names come from the store.
_STEP_DIR = re.compile(r"step-([0-9]{1,12})", re.ASCII)
EXIT_PREEMPTED = 143  # 128 + SIGTERM, what a shell reports for a terminated process
EXIT_INTERRUPTED = 130  # 128 + SIGINT


def step_dir_name(step: int) -> str:
    return f"step-{step}"


class CheckpointStore:
    def __init__(self, output: storage.Location, keep: int) -> None:
        self.root = output.child(CHECKPOINTS_DIR)
        self.keep = keep

    def _steps(self) -> list[int]:
        return sorted(int(m.group(1)) for name in self.root.list() if (m := _STEP_DIR.fullmatch(name)))

    def complete_steps(self) -> list[int]:
        return [s for s in self._steps() if self.root.child(step_dir_name(s)).is_complete_dir()]

    def latest(self) -> int | None:
        steps = self.complete_steps()
        return steps[-1] if steps else None

    def download(self, step: int, local_root: Path) -> Path:
        """Fetch checkpoint `step` into `local_root/checkpoint-<step>` (the Trainer's naming)."""
        # From a local store too: the Trainer only reads it, but the store's copy stays pristine.
        return self.root.child(step_dir_name(step)).download_dir(local_root / f"checkpoint-{step}", copy=True)

    def publish(self, local: Path, step: int) -> str:
        """Upload a Trainer checkpoint as step `step`; returns where it now lives."""
        target = self.root.child(step_dir_name(step))
        target.upload_dir(local)
        log.info("checkpoint step %d published to %s", step, target.uri)
        self.prune()
        return target.uri

    def prune(self) -> None:
        complete = self.complete_steps()
        keep = set(complete[-self.keep:])
        for step in self._steps():
            if step not in keep:
                self.root.child(step_dir_name(step)).delete()


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


def make_callback(store: CheckpointStore, preemption: Preemption,
                  published: Callable[[int, str], None] | None = None) -> Any:
    """A TrainerCallback that publishes every checkpoint the Trainer saves and honours `preemption`.

    `published(step, uri)` hears of each checkpoint once it is complete in the store.
    """
    from transformers import TrainerCallback

    class CheckpointCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if preemption.requested:
                control.should_save = True
                control.should_training_stop = True
            return control

        def on_save(self, args, state, control, **kwargs):
            local = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if local.is_dir():
                uri = store.publish(local, state.global_step)
                if published is not None:
                    published(state.global_step, uri)
            return control

    return CheckpointCallback()
