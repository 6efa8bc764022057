"""GPU training throughput and memory: the train job's backends against plain HF Trainer + PEFT, one GPU.

    python bench/train_gpu.py --runs hf,trl,trl-4bit,unsloth,unsloth-4bit [--shape qwen2.5-3b]
                              [--tokenizer bundled:smollm2-135m] [--steps 30] [--work /tmp/kubetune-gpu]

The model has Qwen2.5-3B's shape (36 layers, hidden 2048, 16 heads / 2 KV heads, vocab 151936, tied
embeddings) with random bf16 weights, written once under --work with --tokenizer's tokenizer: the GPU
host reaches no hub, and step time and memory depend on the shape, not on the weights (the losses
printed are therefore not a quality figure). The data is the quickstart's stage 2 as the pipeline
prepares it (eight requests per row, rows up to --max-seq-length tokens), tokenized by the job itself.

Runs, each in its own process (Unsloth patches transformers on import), LoRA r16/alpha16 on all seven
projections, batch 4, bf16, gradient checkpointing on (the job's CUDA default):
  raw           the same model and rows in a plain PyTorch loop, no Trainer (what the loop costs)
  hf            plain transformers Trainer + PEFT, full-logits loss, AdamW (bench/hf_baseline.py)
  trl           kubetune-job train --backend trl (lean loss, length-grouped batches), same AdamW
  trl-4bit      the same on 4-bit NF4 base weights (QLoRA, bitsandbytes) with the job's default 8-bit AdamW
  unsloth       kubetune-job train --backend unsloth, default optimizer (8-bit AdamW)
  unsloth-4bit  the same, QLoRA
Every figure is the job's own progress record: non-padding tokens/s from the end of the first step,
peak allocated GPU memory. Results accumulate in <work>/results.json, so runs made by several
invocations on one machine print together; each is printed against `hf` when it has run there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SHAPES: dict[str, dict[str, Any]] = {
    "qwen2.5-3b": {"model_type": "qwen2", "vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 11008,
                   "num_hidden_layers": 36, "num_attention_heads": 16, "num_key_value_heads": 2,
                   "max_position_embeddings": 32768, "rope_theta": 1e6, "rms_norm_eps": 1e-6,
                   "tie_word_embeddings": True},
    # SmolLM2-135M's shape, for a quick look at the GPU path on a small model.
    "smollm2-135m": {"model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
                     "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
                     "max_position_embeddings": 8192, "rope_theta": 1e5, "rms_norm_eps": 1e-5,
                     "tie_word_embeddings": True},
    # A smoke test of this script on CPU.
    "tiny": {"model_type": "qwen2", "vocab_size": 49152, "hidden_size": 64, "intermediate_size": 128,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
             "max_position_embeddings": 4096, "tie_word_embeddings": True},
}

JOB_RUNS: dict[str, list[str]] = {
    "trl": ["--backend", "trl", "--optim", "adamw_torch", "--no-load-in-4bit"],
    "trl-4bit": ["--backend", "trl", "--load-in-4bit"],
    "unsloth": ["--backend", "unsloth", "--no-load-in-4bit"],
    "unsloth-4bit": ["--backend", "unsloth", "--load-in-4bit"],
}
RUNS = ["raw", "hf", *JOB_RUNS]


def random_checkpoint(shape: str, tokenizer_ref: str, dest: Path) -> Path:
    """A model of `shape` with random weights and the tokenizer of `tokenizer_ref`, written once."""
    if (dest / "_COMPLETE").exists():
        return dest
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from kubetune_jobs.models import resolve

    fields = dict(SHAPES[shape])
    config = AutoConfig.for_model(fields.pop("model_type"), **fields)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(dest)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # this process stays alive while the runs train
    AutoTokenizer.from_pretrained(resolve(tokenizer_ref)).save_pretrained(dest)
    (dest / "_COMPLETE").write_text("")
    return dest


def prepared_data(model: Path, max_seq_length: int, dest: Path) -> Path:
    """The quickstart's stage-2 data, prepared by the job as the pipeline does."""
    if (dest / "train.jsonl").exists():
        return dest
    from kubetune_jobs import cli

    rc = cli.main(["prepare", "--format", "xlam", "--source", "bundled:quickstart-tools",
                   "--no-call-source", "bundled:quickstart-chat", "--no-call-fraction", "0.5",
                   "--turns-per-row", "8", "--eval-fraction", "0.02", "--output", str(dest),
                   "--tokenizer", str(model), "--max-tokens", str(max_seq_length)])
    if rc:
        sys.exit(f"prepare failed with {rc}")
    return dest


def run_one(name: str, model: Path, data: Path, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    if name in ("raw", "hf"):
        cmd = [sys.executable, str(Path(__file__).resolve()), f"--{name}-child", str(out), "--model-dir", str(model),
               "--data-dir", str(data), "--steps", str(args.steps), "--max-seq-length", str(args.max_seq_length)]
    else:
        cmd = [sys.executable, "-m", "kubetune_jobs.cli", "train", "--model", str(model), "--data", str(data),
               "--output", str(out), "--max-steps", str(args.steps), "--batch-size", "4", "--grad-accum", "1",
               "--max-seq-length", str(args.max_seq_length), "--precision", "bf16", "--save-steps", "100000",
               "--no-merge", *JOB_RUNS[name]]
    log = out.parent / f"{out.name}.log"
    started = time.monotonic()
    with log.open("w") as sink:
        try:
            proc = subprocess.run(cmd, stdout=sink, stderr=subprocess.STDOUT, timeout=args.timeout,
                                  env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                      [str(ROOT / "jobs"), os.environ.get("PYTHONPATH", "")])})
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    seconds = round(time.monotonic() - started, 1)
    if rc != 0:
        tail = log.read_text(errors="replace")[-3000:]
        print(f"--- {name} failed ({rc}) after {seconds}s; log tail:\n{tail}", flush=True)
        return {"run": name, "error": str(rc), "seconds": seconds}
    record = json.loads((out / "progress.json").read_text())
    return {"run": name, "seconds": seconds, **{k: record.get(k) for k in (
        "tokens_per_second", "gpu_memory_peak_gib", "step", "loss", "eval_loss_start", "eval_loss")}}


def report(results: dict[str, dict[str, Any]], header: str) -> str:
    base = results.get("hf", {}).get("tokens_per_second")
    lines = [header, f"  {'run':14} {'tokens/s':>9} {'vs hf':>6} {'peak GiB':>9} {'process s':>10} "
                     f"{'loss':>7} {'eval loss':>17}"]
    for name in RUNS:
        r = results.get(name)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"  {name:14} failed ({r['error']}) after {r['seconds']}s")
            continue
        tps = r["tokens_per_second"] or 0.0
        ratio = f"{tps / base:5.2f}x" if base else "    -"
        ev = f"{r['eval_loss_start']:.3f} -> {r['eval_loss']:.3f}" if r.get("eval_loss") is not None else "-"
        lines.append(f"  {name:14} {tps:9.0f} {ratio:>6} {r['gpu_memory_peak_gib'] or 0:9.2f} "
                     f"{r['seconds']:10.1f} {r['loss'] or 0:7.3f} {ev:>17}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of: {', '.join(RUNS)}")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-3b")
    parser.add_argument("--tokenizer", default="bundled:smollm2-135m",
                        help="model reference (or directory) whose tokenizer the random model gets")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--max-seq-length", type=int, default=1024)
    parser.add_argument("--timeout", type=float, default=400.0, help="seconds per run")
    parser.add_argument("--work", type=Path, default=Path("/tmp/kubetune-gpu"))
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--hf-child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--raw-child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.hf_child or args.raw_child:
        import hf_baseline

        child = hf_baseline.train if args.hf_child else hf_baseline.raw_loop
        child(args.model_dir, args.data_dir, args.hf_child or args.raw_child, steps=args.steps, precision="bf16",
              max_seq_length=args.max_seq_length, gradient_checkpointing=True)
        return

    runs = [r for r in args.runs.split(",") if r]
    unknown = sorted(set(runs) - set(RUNS))
    if unknown:
        parser.error(f"unknown runs {unknown}; known: {RUNS}")
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    model = random_checkpoint(args.shape, args.tokenizer, args.work / f"model-{args.shape}")
    data = prepared_data(model, args.max_seq_length, args.work / f"data-{args.shape}-{args.max_seq_length}")
    print(f"model and data ready in {time.monotonic() - t0:.0f}s", flush=True)
    store = args.work / f"results-{args.shape}.json"
    results: dict[str, dict[str, Any]] = json.loads(store.read_text()) if store.exists() else {}
    for name in runs:
        out = args.work / f"run-{args.shape}-{name}"
        result = run_one(name, model, data, args, out)
        results[name] = result
        store.write_text(json.dumps(results, indent=1))
        print(json.dumps(result), flush=True)

    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    text = report(results, f"\nLoRA training, {args.shape} shape (random weights), {device}, batch 4, "
                           f"{args.steps} steps, rows up to {args.max_seq_length} tokens:")
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"device": device, "shape": args.shape, "steps": args.steps,
                                         "results": results}, indent=1))


if __name__ == "__main__":
    main()
