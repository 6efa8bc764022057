"""Benchmark `kubetune-job prepare` on the reference run's volume: 50 000 chat + 60 000 xlam rows.

Usage: .venv/bin/python bench/prepare.py [--chat 50000] [--tools 60000]

Generates synthetic inputs with our own generator (scripts/datagen, not timed), then times the two
prepare jobs of the reference run end to end as subprocesses (interpreter start included), with
their peak RSS.
The baseline, measured in the same run, is the I/O floor: reading, parsing and re-writing the same
rows with the json module and no conversion at all.
Goal (issue 2): all 110 000 rows in <= 10 s on a 2-core machine, peak RSS <= 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))  # the generator is a dev tool
import datagen  # noqa: E402


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024


def io_floor(paths: list[Path], out: Path) -> float:
    start = time.perf_counter()
    with open(out, "w") as dst:
        for path in paths:
            with open(path) as src:
                for line in src:
                    dst.write(json.dumps(json.loads(line)) + "\n")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chat", type=int, default=50_000)
    parser.add_argument("--tools", type=int, default=60_000)
    args = parser.parse_args()
    job = [sys.executable, "-m", "kubetune_jobs.cli", "prepare"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        chat, tools = root / "chat.jsonl", root / "xlam.jsonl"
        write_jsonl(chat, datagen.chat_rows(args.chat, seed=1))
        write_jsonl(tools, datagen.xlam_rows(args.tools, seed=2))
        t_chat, rss_chat = timed(job + ["--format", "ultrachat", "--source", str(chat),
                                        "--max-samples", str(args.chat), "--output", str(root / "out-chat")])
        t_tools, rss_tools = timed(job + ["--format", "xlam", "--source", str(tools), "--no-call-source",
                                          str(chat), "--no-call-fraction", "0.1", "--output", str(root / "out-tools")])
        floor = io_floor([chat, tools], root / "floor.jsonl")
        stats = json.loads((root / "out-tools" / "stats.json").read_text())
    total = t_chat + t_tools
    rows = args.chat + args.tools
    print(f"prepare chat ({args.chat} rows):  {t_chat:6.2f} s  peak RSS {rss_chat:6.0f} MiB")
    print(f"prepare xlam ({args.tools} rows): {t_tools:6.2f} s  peak RSS {max(rss_chat, rss_tools):6.0f} MiB "
          f"(no-call rows added: {stats['no_call']['generated']})")
    print(f"total: {total:.2f} s for {rows} rows = {rows / total:,.0f} rows/s (goal <= 10 s, <= 2048 MiB)")
    print(f"baseline, json read+write floor of the same rows in-process: {floor:.2f} s "
          f"({total / floor:.1f}x floor) on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
