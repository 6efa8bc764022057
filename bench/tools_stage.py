"""One variant of the quickstart's stage 2 (function calling): data knobs -> prepare -> train -> evaluate.

    .venv/bin/python bench/tools_stage.py NAME --stage1 DIR [--config JSON] [--work /tmp/kubetune-variants]

How the quickstart's tools stage was chosen (docs/history.md, "The demo's tools stage"): each variant
regenerates the synthetic tool set with some generator settings, prepares it with a no-call mix, trains
stage 2 from the same stage-1 model (`--stage1`: a finished quickstart's stages/chat/merged) and
evaluates on the demo's suites, printing times and accuracies as one JSON line. The baseline is the
stage-1 model evaluated on the same suites (`--config '{"skip_train": true}'`).

--config keys (all optional): source (a tool set to use instead of generating one), seed, datagen (fields
of the generator's Config in scripts/datagen/config.py, e.g. {"parallel_share": 0.3, "max_offered": 6}),
conversations (fields of kubetune_jobs.data.conversations.Settings, e.g. {"hard_near_miss_share": 0}),
no_call_max_tools, no_call, near_miss, turns, rows, max_samples, eval_fraction, limit (BFCL slices), seed_limit (default: all seed-tools items), max_new_tokens
(default 96, as the early variants in docs/history.md were measured; the quickstart now uses 128), skip_train, train ({"steps", "lr", "bs", "max_len", "precision", "lora_r", "lora_alpha", "top_layers", "seed"}; LoRA 16/16
on every layer unless given (top_layers: only the last N); seed: the train job's
--seed, 42 unless given, which orders the batches and initialises LoRA: the same data and settings under
another seed show how much of a difference is training noise).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
JOB = [sys.executable, "-m", "kubetune_jobs.cli"]
TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
sys.path.insert(0, str(ROOT / "scripts"))  # the generator is a dev tool, outside the shipped packages
Knobs = TypeVar("Knobs")
CONFIG_KEYS = {"source", "seed", "datagen", "conversations", "no_call_max_tools", "no_call", "near_miss", "turns",
               "rows", "max_samples", "eval_fraction", "limit", "seed_limit", "max_new_tokens", "skip_train", "train"}


def replaced(base: Knobs, section: str, settings: dict[str, Any]) -> Knobs:
    """`base` with the fields named in the --config section `section` replaced (JSON lists as tuples)."""
    known = [f.name for f in dataclasses.fields(base)]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        sys.exit(f"--config {section}: unknown key {unknown[0]!r} (known: {', '.join(known)})")
    try:
        return dataclasses.replace(base, **{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
    except ValueError as exc:
        sys.exit(f"--config {section}: {exc}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("--stage1", required=True, help="stage-1 merged model directory")
    ap.add_argument("--config", default="{}", help="JSON settings, see above")
    ap.add_argument("--work", default="/tmp/kubetune-variants")
    args = ap.parse_args()
    cfg = json.loads(args.config)
    if unknown := sorted(set(cfg) - CONFIG_KEYS):
        sys.exit(f"--config: unknown key {unknown[0]!r} (known: {', '.join(sorted(CONFIG_KEYS))})")
    work = Path(args.work) / args.name
    work.mkdir(parents=True, exist_ok=True)

    import datagen
    from kubetune_jobs import cli
    from kubetune_jobs.contract.options import PrepareOptions
    from kubetune_jobs.data import conversations, convert, prepare

    data_config = replaced(datagen.DEFAULT, "datagen", cfg.get("datagen", {}))
    conversation_settings = replaced(conversations.DEFAULT, "conversations", cfg.get("conversations", {}))
    if cfg.get("source"):  # e.g. bundled:quickstart-tools, as shipped
        source = cfg["source"]
    else:
        source = work / "tools.jsonl"
        rows = datagen.xlam_rows(cfg.get("rows", 600), seed=cfg.get("seed", 1), config=data_config)
        source.write_bytes(datagen.write_jsonl(rows))
    if "no_call_max_tools" in cfg:
        convert.no_call = functools.partial(convert.no_call, max_tools=cfg["no_call_max_tools"])
        convert.near_miss = functools.partial(convert.near_miss, max_tools=cfg["no_call_max_tools"])

    times: dict[str, float] = {}
    t0 = time.monotonic()
    prepare_args = PrepareOptions.from_namespace(cli.build_parser().parse_args([
        "prepare", "--format", "xlam", "--source", str(source), "--output", str(work / "data"),
        "--max-samples", str(cfg.get("max_samples", 600)), "--eval-fraction", str(cfg.get("eval_fraction", 0.02)),
        "--no-call-source", "bundled:quickstart-chat", "--no-call-fraction", str(cfg.get("no_call", 0.5)),
        "--near-miss-share", str(cfg.get("near_miss", 0.3)), "--turns-per-row", str(cfg.get("turns", 1))]))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rc = prepare.run(prepare_args, conversation_settings)
    if rc:
        sys.exit(f"prepare failed with {rc}")
    times["prepare"] = time.monotonic() - t0

    def job(argv: list[str], log: str) -> float:
        start = time.monotonic()
        with open(work / log, "w") as f:
            if subprocess.run([*JOB, *argv], stdout=f, stderr=subprocess.STDOUT).returncode:
                sys.exit(f"{argv[0]} failed; see {work / log}")
        return time.monotonic() - start

    model = args.stage1
    if not cfg.get("skip_train"):
        tr = cfg.get("train", {})
        times["train"] = job([
            "train", "--model", args.stage1, "--data", str(work / "data"), "--output", str(work / "out"),
            "--backend", "trl", "--lora-r", str(tr.get("lora_r", 16)),
            "--lora-alpha", str(tr.get("lora_alpha", tr.get("lora_r", 16))), "--lora-dropout", "0.0",
            "--target-modules", TARGETS, *(["--lora-top-layers", str(tr["top_layers"])] if "top_layers" in tr else []),
            "--batch-size", str(tr.get("bs", 4)), "--grad-accum", "1",
            "--learning-rate", str(tr.get("lr", 0.002)), "--max-steps", str(tr.get("steps", 48)),
            "--max-seq-length", str(tr.get("max_len", 1024)), "--warmup-ratio", "0.05",
            "--lr-scheduler", "linear", "--precision", tr.get("precision", "fp32"), "--no-load-in-4bit",
            "--save-steps", "1000", "--keep-checkpoints", "1", "--seed", str(tr.get("seed", 42))], "train.log")
        model = str(work / "out" / "merged")
    times["evaluate"] = job([
        "evaluate", "--local-model", model, "--output", str(work / "eval"),
        "--suite", "seed-tools" + (f":{cfg['seed_limit']}" if "seed_limit" in cfg else ""),
        "--suite", f"bfcl-simple_python:{cfg.get('limit', 16)}", "--suite", f"bfcl-irrelevance:{cfg.get('limit', 16)}",
        "--max-new-tokens", str(cfg.get("max_new_tokens", 96))], "eval.log")

    report = json.loads((work / "eval" / "report.json").read_text())
    progress_file = work / "out" / "progress.json"
    progress = json.loads(progress_file.read_text()) if progress_file.exists() else {}
    print(json.dumps({
        "variant": args.name, "config": cfg, "seconds": {k: round(v) for k, v in times.items()},
        "tokens_per_second": progress.get("tokens_per_second"),
        "eval_loss": [progress.get("eval_loss_start"), progress.get("eval_loss")],
        "suites": {name: {k: agg.get(k) for k in ("accuracy", "false_call_rate", "missed_call_rate")}
                   for name, agg in report["suites"].items()},
    }))


if __name__ == "__main__":
    main()
