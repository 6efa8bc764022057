"""What the live probe costs the server it watches: one round of the default probe set, and the server's capacity
measured in the same run.

    .venv/bin/python bench/probe_cost.py [--rounds 3] [--interval 60] [--dtype float32]

Real vLLM (CPU build) serves the bundled SmolLM2-135M with our template and the hermes parser. A round is what
`spec.monitoring.probe` sends by default (seed-tools' first 10 items, 128 new tokens at most, 4 in flight), through
`kubetune-job probe`'s own loop; the server's counters (vLLM's /metrics) say how many tokens it cost. The baseline is
the same server's output throughput at the same concurrency (64-token answers, EOS ignored). Printed: requests per
minute at the interval, the round's wall time and tokens, and the share of the server's time and of its output
capacity the probe takes.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def counters(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url, timeout=30).read().decode()
    out: dict[str, float] = {}
    for name in ("vllm:prompt_tokens_total", "vllm:generation_tokens_total"):
        out[name] = sum(float(v) for v in re.findall(rf"^{re.escape(name)}{{[^}}]*}} ([0-9.e+]+)$", text, re.M))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval", type=float, default=60.0, help="the probe interval the shares are for")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()

    from openai import OpenAI

    from kubetune_jobs.contract.options import ProbeOptions
    from kubetune_jobs.models import resolve
    from kubetune_jobs.probe.run import loop
    from kubetune_jobs.serving.process import free_port
    from kubetune_jobs.serving.template import CHAT_TEMPLATE_FILE, servable_copy
    from kubetune_jobs.serving.vllm_server import VLLMServer
    from kubetune_operator.modelserve import api, vllm

    model = servable_copy(resolve("bundled:smollm2-135m"), Path(tempfile.mkdtemp()) / "model")
    spec = api.RESOURCE.parse_spec({"model": {"hub": "x"}, "servedModelName": "probe-bench", "resources": {"gpus": 0},
                                    "vllm": {"dtype": args.dtype, "maxModelLen": 4096, "extraArgs": ["--enforce-eager"]}})
    pr = spec.monitoring.probe
    argv = vllm.argv(spec, "probe-bench", vllm.ModelFiles(str(model), str(model / CHAT_TEMPLATE_FILE)),
                     host="127.0.0.1", port=free_port())
    with VLLMServer(argv) as server:
        options = ProbeOptions(endpoint=server.base_url, model=server.model, max_new_tokens=pr.max_new_tokens,
                               suite=tuple(f"{s.name}:{s.limit}" for s in pr.suites), rounds=1)
        loop(options, threading.Event())  # warm-up round
        walls, prompt, generated = [], 0.0, 0.0
        for _ in range(args.rounds):
            before = counters(server.metrics_url)
            started = time.perf_counter()
            loop(options, threading.Event())
            walls.append(time.perf_counter() - started)
            after = counters(server.metrics_url)
            prompt += after["vllm:prompt_tokens_total"] - before["vllm:prompt_tokens_total"]
            generated += after["vllm:generation_tokens_total"] - before["vllm:generation_tokens_total"]
        items = sum(s.limit or 0 for s in pr.suites)
        client = OpenAI(base_url=server.base_url, api_key="none")

        def one(i: int) -> int:
            resp = client.chat.completions.create(model=server.model, max_tokens=64, temperature=0.0,
                                                  messages=[{"role": "user", "content": f"Tell me about {i}."}],
                                                  extra_body={"ignore_eos": True})
            return resp.usage.completion_tokens

        one(0)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(options.concurrency) as pool:
            produced = sum(pool.map(one, range(32)))
        capacity = produced / (time.perf_counter() - t0)
    wall = sum(walls) / len(walls)
    per_round_out = generated / args.rounds
    print(f"probe set: {items} requests ({', '.join(options.suite)}), {pr.max_new_tokens} new tokens at most, "
          f"{options.concurrency} in flight; interval {args.interval:.0f} s -> {items * 60 / args.interval:.0f} "
          "requests per minute")
    print(f"one round: {wall:.1f} s wall (rounds: {', '.join(f'{w:.1f}' for w in walls)}), "
          f"{prompt / args.rounds:.0f} prompt + {per_round_out:.0f} output tokens")
    print(f"baseline, same server: {capacity:.1f} output tok/s at concurrency {options.concurrency}")
    print(f"share of the server's time busy with the probe: {wall / args.interval:.1%}; of its output capacity: "
          f"{per_round_out / (capacity * args.interval):.2%}")


if __name__ == "__main__":
    main()
