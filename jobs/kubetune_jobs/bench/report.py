"""The readable table of a sweep, with the origin document's A6000 figures beside it for orientation.

The origin document measured one request at about 50 output tok/s and eight concurrent requests at
about 368 tok/s on an RTX A6000 (7.4x, continuous batching). Those are another model on another
machine: they say what scaling to expect from a batching server, not what this one should reach.
"""

from __future__ import annotations

from ..contract.records import BenchLevel, BenchReport

ORIGIN_GPU = "RTX A6000"
ORIGIN_OUTPUT_THROUGHPUT = {1: 50.0, 8: 368.0}  # concurrency -> output tok/s, the origin document's


def scaling(levels: list[BenchLevel]) -> dict[int, float]:
    """Output throughput of each level over the single-request level's (empty without one)."""
    base = next((lv.output_throughput for lv in levels if lv.concurrency == 1), None)
    if not base:
        return {}
    return {lv.concurrency: lv.output_throughput / base for lv in levels}


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f}"


def counts_agree(lv: BenchLevel) -> bool | None:
    """Whether the server counted the same completed requests and output tokens (None: no counts)."""
    if lv.server_completed is None or lv.server_output_tokens is None:
        return None
    return (lv.server_completed, lv.server_output_tokens) == (lv.completed, lv.output_tokens)


def _counts_check(lv: BenchLevel) -> str:
    agree = counts_agree(lv)
    if agree is None:
        return "–"
    if agree:
        return "agree"
    return f"server {lv.server_completed} req / {lv.server_output_tokens} tok"


def table(report: BenchReport) -> str:
    ratios = scaling(report.levels)
    origin_base = ORIGIN_OUTPUT_THROUGHPUT[1]
    lines = [
        f"bench: {report.model} at {report.endpoint} ({report.server or 'unknown server'}), "
        f"{report.max_tokens} output tokens per request"
        + ("" if report.server == "vllm" else " at most (the server may stop earlier)"),
        "",
        "| concurrency | done | failed | s | req/s | out tok/s | total tok/s | × c=1 | TTFT p50 / p99 ms "
        "| TPOT p50 ms | ITL p50 ms | E2E p50 s | server counts "
        f"| {ORIGIN_GPU} tok/s | {ORIGIN_GPU} × |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lv in report.levels:
        origin = ORIGIN_OUTPUT_THROUGHPUT.get(lv.concurrency)
        lines.append(
            f"| {lv.concurrency} | {lv.completed} | {lv.failed} | {lv.duration_s:.1f} | {lv.request_throughput:.2f} "
            f"| {lv.output_throughput:.1f} | {lv.total_token_throughput or 0:.1f} "
            f"| {f'{ratios[lv.concurrency]:.1f}x' if lv.concurrency in ratios else '–'} "
            f"| {_ms(lv.ttft_p50_s)} / {_ms(lv.ttft_p99_s)} | {_ms(lv.tpot_p50_s)} | {_ms(lv.itl_p50_s)} "
            f"| {'–' if lv.e2e_p50_s is None else f'{lv.e2e_p50_s:.2f}'} | {_counts_check(lv)} "
            f"| {'–' if origin is None else f'{origin:.0f}'} | {'–' if origin is None else f'{origin / origin_base:.1f}x'} |"
        )
    if report.warmup:
        w = report.warmup
        lines += ["", f"warm-up (not in any level): {w.get('completed', 0)} of {w.get('requests', 0)} completed"
                  + (f", e2e {w['e2e_mean_s']:.2f} s" if w.get("e2e_mean_s") is not None else "")]
    if not report.complete:
        lines += ["", f"INCOMPLETE: {report.error or 'the sweep stopped early'}"]
    lines += [f"note: {n}" for n in report.notes]
    for lv in report.levels:
        for reason, count in lv.errors.items():
            lines.append(f"concurrency {lv.concurrency}: {count} failed: {reason}")
    return "\n".join(lines) + "\n"
