"""What many adapters on one base cost vLLM, and how long an adapter takes from the set to serving.

    .venv/bin/python bench/adapters.py [--requests 32] [--concurrency 4] [--dtype float32]

Real vLLM (CPU build, its punica LoRA path) serves the bundled SmolLM2-135M with our template. Three rank-8
adapters are trained by the project's train job (two steps on the top two layers, cached between runs). In one
run, at the same concurrency and answer length (64 tokens, EOS ignored), it measures output tokens/s of:

    base, no LoRA        a server without --enable-lora (the baseline)
    base, LoRA on        the LoRA server, every request to the base model
    base + 1 adapter     requests alternating between the base and one adapter
    base + 3 adapters    requests round-robin over the base and three adapters

and, for each adapter, the seconds from the set naming it to the agent (`kubetune-job adapters` at a 1 s
interval) reporting it loaded: fetch and check of its files, then vLLM's runtime load. In a cluster, kubelet's
refresh of the mounted ConfigMap (about a minute) comes before that.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "fixtures" / "toolcalls"
TRAIN = ["--max-steps", "2", "--batch-size", "2", "--grad-accum", "1", "--max-seq-length", "384", "--save-steps",
         "1000", "--lora-top-layers", "2", "--precision", "fp32", "--no-load-in-4bit", "--lora-r", "8",
         "--lora-alpha", "16"]
NAMES = ("first", "second", "third")


def adapters(cache: Path) -> dict[str, Path]:
    """Three adapters on the bundled model (trained once; the train job skips a finished stage)."""
    out = {}
    for i, name in enumerate(NAMES):
        stage = cache / name
        subprocess.run([sys.executable, "-m", "kubetune_jobs.cli", "train", "--model", "bundled:smollm2-135m",
                        "--data", str(DATA), "--output", str(stage), "--learning-rate", f"{(i + 1) * 1e-2}", *TRAIN],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out[name] = stage / "adapter"
    return out


def throughput(base_url: str, models: list[str], requests: int, concurrency: int) -> float:
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="none")

    def one(i: int) -> int:
        resp = client.chat.completions.create(model=models[i % len(models)], max_tokens=64, temperature=0.0,
                                              messages=[{"role": "user", "content": f"Tell me about {i}."}],
                                              extra_body={"ignore_eos": True})
        return resp.usage.completion_tokens

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(concurrency)))  # warm-up: every model of the mix once per slot
        started = time.perf_counter()
        tokens = sum(pool.map(one, range(requests)))
    return tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "kubetune-bench-adapters"))
    args = parser.parse_args()

    from kubetune_jobs.contract.adapters import RUNTIME_UPDATES_ENV
    from kubetune_jobs.contract.layout import COMPLETE_MARKER, marker_digest
    from kubetune_jobs.contract.records import LOADED, AdapterSet, ReplicaAdapters, Wanted, read
    from kubetune_jobs.models import resolve
    from kubetune_jobs.serving.process import free_port
    from kubetune_jobs.serving.template import CHAT_TEMPLATE_FILE, servable_copy
    from kubetune_jobs.serving.vllm_server import VLLMServer
    from kubetune_operator.modelserve import api, vllm

    cache = Path(args.cache)
    trained = adapters(cache)
    model = servable_copy(resolve("bundled:smollm2-135m"), Path(tempfile.mkdtemp()) / "model")
    files = vllm.ModelFiles(str(model), str(model / CHAT_TEMPLATE_FILE))
    raw = {"model": {"hub": "x", "lora": {"maxRank": 8, "maxLoras": 4}}, "servedModelName": "base",
           "resources": {"gpus": 0}, "vllm": {"dtype": args.dtype, "maxModelLen": 2048, "extraArgs": ["--enforce-eager"]}}
    plain = api.RESOURCE.parse_spec(raw)
    lora = api.RESOURCE.parse_spec({**raw, "adapters": [{"name": "x", "uri": "s3://bucket/x"}]})
    figures: dict[str, float] = {}
    with VLLMServer(vllm.argv(plain, "base", files, host="127.0.0.1", port=free_port())) as server:
        figures["base, no LoRA"] = throughput(server.base_url, ["base"], args.requests, args.concurrency)
    env = {**os.environ, RUNTIME_UPDATES_ENV: "True"}
    with VLLMServer(vllm.argv(lora, "base", files, host="127.0.0.1", port=free_port()), env=env) as server, \
            tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        set_file, states = work_dir / "adapters.json", work_dir / "states"
        agent = subprocess.Popen([sys.executable, "-m", "kubetune_jobs.cli", "adapters", "--endpoint", server.root_url,
                                  "--set", str(set_file), "--cache", str(work_dir / "placed"), "--output", str(states),
                                  "--replica", "bench", "--interval-seconds", "1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ready_seconds = {}
        try:
            wanted: list[Wanted] = []
            for name, directory in trained.items():
                digest = marker_digest((directory / COMPLETE_MARKER).read_bytes())
                wanted.append(Wanted(name=name, uri=str(directory), digest=digest))
                began = time.perf_counter()
                set_file.write_text(json.dumps(AdapterSet(base="base", max_rank=8, adapters=wanted).dump()))
                while True:
                    path = states / "bench.json"
                    report = read(ReplicaAdapters, path.read_bytes()) if path.exists() else None
                    if report and any(a.name == name and a.digest == digest and a.state == LOADED
                                      for a in report.adapters):
                        break
                    time.sleep(0.05)
                ready_seconds[name] = time.perf_counter() - began
            figures["base, LoRA on"] = throughput(server.base_url, ["base"], args.requests, args.concurrency)
            figures["base + 1 adapter"] = throughput(server.base_url, ["base", "first"], args.requests,
                                                     args.concurrency)
            figures["base + 3 adapters"] = throughput(server.base_url, ["base", *NAMES], args.requests,
                                                      args.concurrency)
        finally:
            agent.terminate()
            agent.wait(30)
    baseline = figures["base, no LoRA"]
    print(f"output tokens/s at concurrency {args.concurrency}, {args.requests} requests of 64 tokens, {args.dtype}:")
    for label, value in figures.items():
        print(f"  {label:<20} {value:7.1f}  ({value / baseline:.2f}x the baseline)")
    print("set -> loaded on the replica (agent at a 1 s interval): "
          + ", ".join(f"{n} {s:.1f} s" for n, s in ready_seconds.items()))


if __name__ == "__main__":
    main()
