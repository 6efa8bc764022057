"""`kubetune-job`: the workloads' command line, the only contract between the operator and the jobs.

The operator (and `kubetune run`) build exactly these command lines; nothing else is shared. Each
subcommand's implementation is imported only when it runs, so `prepare` never pays for torch.
Exit codes: 0 done (or already done), 1 failed with a one-line reason on stderr, 2 bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

DEFAULT_TARGET_MODULES = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


def _prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="convert a source dataset into training rows in the chat/tool format")
    p.add_argument("--format", required=True, choices=["ultrachat", "xlam"], help="source format")
    p.add_argument("--source", required=True,
                   help="Hub dataset id, local .jsonl/.json/.parquet file or directory, or s3:// URI")
    p.add_argument("--source-split", default=None,
                   help="split of a Hub dataset (default: train_sft for ultrachat, train for xlam)")
    p.add_argument("--output", required=True, help="directory or s3:// prefix for train.jsonl, eval.jsonl, stats.json")
    p.add_argument("--no-call-source", default=None,
                   help="chat rows (ultrachat format) to pair with unrelated tools as no-call examples")
    p.add_argument("--no-call-split", default=None, help="split of a Hub no-call source (default: train_sft)")
    p.add_argument("--no-call-fraction", type=float, default=0.1,
                   help="share of the output that are no-call examples (xlam format only)")
    p.add_argument("--near-miss-share", type=float, default=0.3,
                   help="share of the no-call examples made from tool requests offered only unfitting tools "
                        "(the rest are chat turns offered unrelated tools)")
    p.add_argument("--turns-per-row", type=int, default=1,
                   help="xlam only: build conversations of up to this many requests sharing one tools block "
                        "(call and no-call turns mixed at --no-call-fraction); 1 keeps one request per row")
    p.add_argument("--system-prompt", default=None, help="system prompt added to every conversation")
    p.add_argument("--max-samples", type=int, default=None, help="keep at most this many converted rows")
    p.add_argument("--eval-fraction", type=float, default=0.02, help="share of rows held out in eval.jsonl")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--tokenizer", default=None, help="model reference whose tokenizer measures row length")
    p.add_argument("--max-tokens", type=int, default=None, help="drop rows that render longer than this")


def _train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="one supervised fine-tuning stage with LoRA/QLoRA")
    p.add_argument("--model", required=True,
                   help="base model: Hub id, local dir, s3:// URI of a merged model, or bundled:smollm2-135m")
    p.add_argument("--data", required=True, help="directory or s3:// prefix holding train.jsonl and eval.jsonl")
    p.add_argument("--output", required=True,
                   help="stage directory or s3:// prefix: checkpoints/, adapter/, merged/, progress.json")
    p.add_argument("--backend", choices=["auto", "unsloth", "trl"], default="auto",
                   help="auto: Unsloth on CUDA, TRL+PEFT elsewhere")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=16)
    p.add_argument("--lora-dropout", type=float, default=0.0)
    p.add_argument("--target-modules", default=DEFAULT_TARGET_MODULES, help="comma-separated module names")
    p.add_argument("--batch-size", type=int, default=4, help="per-device batch size")
    p.add_argument("--grad-accum", type=int, default=4, help="gradient accumulation steps")
    p.add_argument("--learning-rate", type=float, default=2e-4)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps (-1: epochs)")
    p.add_argument("--max-seq-length", type=int, default=1024)
    p.add_argument("--warmup-ratio", type=float, default=0.03)
    p.add_argument("--lr-scheduler", default="linear")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--optim", default="auto", help="auto: adamw_8bit on CUDA, adamw_torch elsewhere")
    p.add_argument("--precision", choices=["auto", "bf16", "fp16", "fp32"], default="auto",
                   help="auto: bf16 where supported, else fp32")
    p.add_argument("--load-in-4bit", action="store_true", help="QLoRA: 4-bit base weights (CUDA only)")
    p.add_argument("--packing", action="store_true", help="pack sequences (padding-free)")
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None,
                   help="default: on for CUDA, off on CPU")
    p.add_argument("--save-steps", type=int, default=100, help="checkpoint every N optimizer steps")
    p.add_argument("--keep-checkpoints", type=int, default=2, help="newest checkpoints kept")
    p.add_argument("--eval-steps", type=int, default=0, help="evaluate every N steps (0: at the end only)")
    p.add_argument("--logging-steps", type=int, default=1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-merge", action="store_true", help="export the adapter only")
    p.add_argument("--pushgateway", default=None, help="Prometheus Pushgateway URL for kubetune_train_* metrics")
    p.add_argument("--run-name", default="local", help="metric label: the FineTuneRun")
    p.add_argument("--stage-name", default="train", help="metric label: the stage")


def _evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="function-calling accuracy, no-call behaviour and chat quality")
    p.add_argument("--suite", action="append", default=[],
                   help="bfcl-<category>, seed-tools, heldout, chat; NAME:N for its first N items (repeatable)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--endpoint", help="OpenAI-compatible base URL (…/v1); key from KUBETUNE_API_KEY")
    target.add_argument("--local-model", help="model reference evaluated in-process (transformers)")
    target.add_argument("--predictions", help="JSONL of {id, tool_calls|text} to score without a model")
    p.add_argument("--model", help="served model name (with --endpoint)")
    p.add_argument("--output", help="directory or s3:// prefix for report.json and report.md")
    p.add_argument("--data", action="append", default=None,
                   help="prepare output (eval.jsonl) for the heldout and chat suites (repeatable)")
    p.add_argument("--limit", type=int, default=None, help="first N items of each suite without its own :N")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (endpoint)")
    p.add_argument("--batch-size", type=int, default=8, help="generation batch (local model)")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    p.add_argument("--retries", type=int, default=3, help="attempts per request on transient errors")
    p.add_argument("--judge-endpoint", default=None, help="OpenAI-compatible judge for the chat suite")
    p.add_argument("--judge-model", default=None)
    p.add_argument("--pushgateway", default=None, help="Prometheus Pushgateway URL for kubetune_eval_* metrics")
    p.add_argument("--run-name", default="local", help="metric label: the FineTuneRun")
    p.add_argument("--model-label", default=None, help="metric label: which model (base, stage name)")
    p.add_argument("--compare", nargs="+", metavar="REPORT",
                   help="print a before/after table of report.json files instead of evaluating")


def _serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a model with an OpenAI-compatible API "
                                     "(transformers serve: the CPU fallback to vLLM)")
    p.add_argument("--model", required=True, help="model directory, s3:// URI of a merged model, or bundled:NAME")
    p.add_argument("--port", type=int, default=8000)


SUBCOMMANDS = {
    "prepare": (_prepare, "kubetune_jobs.data.prepare"),
    "train": (_train, "kubetune_jobs.train.run"),
    "evaluate": (_evaluate, "kubetune_jobs.evaluate.run"),
    "serve": (_serve, "kubetune_jobs.serving.run"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubetune-job", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for add, _ in SUBCOMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command in ("train", "evaluate", "serve"):
        from .runtime import configure_threads

        configure_threads()
    module = importlib.import_module(SUBCOMMANDS[args.command][1])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"kubetune-job {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the job's contract is one line on stderr and exit 1
        if args.verbose:
            raise
        print(f"kubetune-job {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
