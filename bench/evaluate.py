"""Evaluation speed: scoring all 1,240 non-live BFCL items from predictions (goal <= 2 s), and end-to-end
items/s against a local `transformers serve` at concurrency 1 and 16.

    .venv/bin/python bench/evaluate.py [--limit 8] [--max-new-tokens 16]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from kubetune_jobs.evaluate import bfcl, checker, report, suites, targets

NON_LIVE = [f"bfcl-{c}" for c in bfcl.NON_LIVE]


def bench_scoring(tmp: Path) -> None:
    items = [it for name in NON_LIVE for it in suites.load(name)]
    preds = tmp / "gt.jsonl"
    with preds.open("w") as fh:
        for it in items:
            fh.write(json.dumps({"id": it.id, "tool_calls": checker.example_calls(it.ground_truth, it.functions)}) + "\n")
    t0 = time.perf_counter()
    loaded = targets.load_predictions(str(preds))
    records = [report.score_item(it, loaded.get(it.id)) for it in items]
    built = report.build(records, suites=NON_LIVE, target="bench", model_label="gt", run_name="bench")
    elapsed = time.perf_counter() - t0
    acc = sum(r["passed"] for r in records) / len(records)
    print(f"scoring {len(items)} non-live BFCL items from predictions: {elapsed:.3f} s "
          f"(goal <= 2 s), accuracy {acc:.3f}, complete={built['complete']}")


def bench_endpoint(limit: int, max_new_tokens: int) -> None:
    from kubetune_jobs.models import resolve
    from kubetune_jobs.serving.template import servable_copy
    from kubetune_jobs.serving.transformers_server import LocalServer

    items = suites.load("seed-tools", limit=limit)
    with tempfile.TemporaryDirectory() as tmp:
        model = servable_copy(resolve("bundled:smollm2-135m"), Path(tmp) / "model")
        with LocalServer(model) as server:
            for concurrency in (1, 16):
                target = targets.EndpointTarget(server.base_url, server.model, concurrency=concurrency,
                                                max_new_tokens=max_new_tokens)
                target.predict(items[:1], desc="warm-up")
                t0 = time.perf_counter()
                preds = target.predict(items, desc=f"concurrency {concurrency}")
                elapsed = time.perf_counter() - t0
                failed = sum(p.failure is not None for p in preds.values())
                print(f"transformers serve, SmolLM2-135M, {len(items)} seed-tools items, max_new_tokens "
                      f"{max_new_tokens}, concurrency {concurrency}: {len(items) / elapsed:.2f} items/s ({failed} failed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--skip-endpoint", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_scoring(Path(tmp))
    if not args.skip_endpoint:
        bench_endpoint(args.limit, args.max_new_tokens)


if __name__ == "__main__":
    main()
