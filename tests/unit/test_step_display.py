"""How a long step shows progress where stdout is not a terminal (a log file, CI output): one plain line per
tick with what is done, never a line cut mid-figure; on a terminal, a live bar and no such lines."""

from __future__ import annotations

import io

from rich.console import Console

from kubetune_local.display import Done, StepDisplay, duration


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=40), out


def test_a_log_gets_one_whole_line_per_tick_with_what_is_done() -> None:
    console, out = plain_console()
    with StepDisplay(console, "[3/7] eval-base", tick_seconds=0.0) as display:
        display.update(None)
        display.update(Done(3, 8, "items", "ETA 12s"))
        display.update(Done(5, 12, "steps", "loss 0.537, 142 tok/s, ETA 45s"))
    lines = out.getvalue().splitlines()
    assert lines == ["  [3/7] eval-base: running for 0s",
                     "  [3/7] eval-base: running for 0s, 3/8 items, ETA 12s",
                     "  [3/7] eval-base: running for 0s, 5/12 steps, loss 0.537, 142 tok/s, ETA 45s"]


def test_between_ticks_a_log_gets_nothing() -> None:
    console, out = plain_console()
    with StepDisplay(console, "step", tick_seconds=3600.0) as display:
        for done in range(5):
            display.update(Done(done, 5, "items"))
    assert out.getvalue() == ""


def test_a_terminal_gets_a_bar_not_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    with StepDisplay(console, "step", tick_seconds=0.0) as display:
        display.update(Done(1, 2, "items"))
    assert "running for" not in out.getvalue()


def test_durations_read_as_minutes_and_seconds() -> None:
    assert (duration(42.9), duration(60), duration(3725)) == ("42s", "1m00s", "62m05s")
