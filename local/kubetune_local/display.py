"""How a long step shows its progress: a live bar on a terminal; on anything else (a log file, CI output),
where a bar prints nothing until it ends, one plain line every `TICK_SECONDS` with what is done, the rate
and the time left."""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

TICK_SECONDS = 30.0


def duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@dataclass(frozen=True)
class Done:
    """What a step has done: `completed` of `total` `unit`, and a few figures (`detail`)."""

    completed: int
    total: int | None
    unit: str
    detail: str = ""


class StepDisplay:
    def __init__(self, console: Console, prefix: str, *, tick_seconds: float = TICK_SECONDS) -> None:
        self.console, self.prefix, self.tick = console, prefix, tick_seconds
        self.started = self.last_line = time.monotonic()
        self.bar: Progress | None = None
        if console.is_terminal:
            self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=console,
                                transient=True)
            self.task = self.bar.add_task(prefix, total=None, detail="")

    def __enter__(self) -> StepDisplay:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()

    def update(self, done: Done | None) -> None:
        """Show `done` (None: nothing measured yet; the plain line then says the step still runs)."""
        if self.bar is not None:
            if done is not None:
                self.bar.update(self.task, total=done.total, completed=done.completed, detail=done.detail)
            return
        now = time.monotonic()
        if now - self.last_line < self.tick:
            return
        self.last_line = now
        parts = [f"{self.prefix}: running for {duration(now - self.started)}"]
        if done is not None:
            of = f"/{done.total}" if done.total else ""
            parts.append(f"{done.completed}{of} {done.unit}")
            if done.detail:
                parts.append(done.detail)
        self.console.print("  " + ", ".join(parts), markup=False, highlight=False, emoji=False, soft_wrap=True)
