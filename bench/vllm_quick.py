"""Quick vLLM (CPU build) figures on the bundled SmolLM2-135M: startup, and output tok/s at concurrency 1
and 8 with 64-token outputs. A first look, not the serving benchmark.

    .venv/bin/python bench/vllm_quick.py [--cache DIR] [--eager] [--no-throughput] [--dtype float32]

`--cache` points vLLM's cache (VLLM_CACHE_ROOT, compiled graphs included) at DIR: an empty one
measures a first start, the same one again a cached start.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubetune_jobs.models import resolve
from kubetune_jobs.serving.template import CHAT_TEMPLATE_FILE, servable_copy
from kubetune_jobs.serving.vllm_server import VLLMServer


def throughput(server: VLLMServer, concurrency: int, requests: int, tokens: int = 64) -> float:
    from openai import OpenAI

    client = OpenAI(base_url=server.base_url, api_key="none")

    def one(i: int) -> int:
        resp = client.chat.completions.create(
            model=server.model, messages=[{"role": "user", "content": f"Tell me a story about the number {i}."}],
            max_tokens=tokens, temperature=0.0, extra_body={"ignore_eos": True})
        return resp.usage.completion_tokens

    one(0)  # warm-up
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        produced = sum(pool.map(one, range(requests)))
    return produced / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", help="VLLM_CACHE_ROOT (default: vLLM's own, ~/.cache/vllm)")
    ap.add_argument("--eager", action="store_true", help="--enforce-eager (no torch.compile)")
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--dtype", default="bfloat16", help="vLLM --dtype (bfloat16, float32)")
    ap.add_argument("--log", help="keep the server's log in this file")
    ap.add_argument("--model-dir", help="make the servable copy here (default: a new temporary directory; "
                                        "vLLM's compile cache is keyed by the model's path)")
    args = ap.parse_args()
    env = dict(os.environ)
    if args.cache:
        env["VLLM_CACHE_ROOT"] = args.cache
    with tempfile.TemporaryDirectory() as tmp:
        model = servable_copy(resolve("bundled:smollm2-135m"), Path(args.model_dir or Path(tmp) / "model"))
        argv = ["--model", str(model), "--served-model-name", "smollm2", "--dtype", args.dtype,
                "--max-model-len", "4096", "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
                "--chat-template", str(model / CHAT_TEMPLATE_FILE)]
        if args.eager:
            argv.append("--enforce-eager")
        t0 = time.perf_counter()
        with VLLMServer(argv, env=env, log_path=args.log) as server:
            print(f"startup {'eager' if args.eager else 'compiled'} {args.dtype} cache={args.cache or 'default'}: "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
            if not args.no_throughput:
                for concurrency, requests in ((1, 4), (8, 16)):
                    print(f"concurrency {concurrency}: {throughput(server, concurrency, requests):.1f} output tok/s "
                          f"({requests} requests x 64 tokens)", flush=True)
            t1 = time.perf_counter()
        print(f"stop: {time.perf_counter() - t1:.1f} s")


if __name__ == "__main__":
    main()
