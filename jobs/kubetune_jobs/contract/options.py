"""Each job's flags, typed, with their defaults: the one definition behind `kubetune-job`'s parsers and
behind the command lines the operator and `kubetune run` build.

    opts = TrainOptions(model="Qwen/Qwen2.5-3B", data=..., output=...)
    argv = opts.command_line()              # ["train", "--model", "Qwen/Qwen2.5-3B", ...]
    TrainOptions.parse(argv[1:]) == opts    # the job reads back exactly what was meant

A field becomes the flag `--field-name`; booleans get `--x/--no-x`; a Literal type gives the choices; tuples
are a comma-separated value (`sep`) or a repeated flag (`repeat`). The defaults are the reference run's
(DESIGN.md). The train job's hyperparameters are declared in `hyperparams` and become TrainOptions fields
(`declared_flags`); the FineTuneRun CRD takes its data and evaluation defaults from here (`defaults()`).

A step's fingerprint digests `command_line_identity()`: the flags that change results (a field declares
`changes_results`), each only where it is set to another value than its default. A flag added later, whose
default is what ran before it, thus leaves the fingerprints of finished steps as they were.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import MISSING, dataclass, field
from functools import cache
from typing import Any, ClassVar, Literal

from .hyperparams import DECLARATIONS, Declaration

FORMATS = ("ultrachat", "xlam")


def flag(default: Any = MISSING, help: str = "", *, choices: tuple[str, ...] | None = None, sep: str | None = None,
         repeat: bool = False, group: str | None = None, nargs: str | None = None, metavar: str | None = None,
         changes_results: bool = True, param: Any = None) -> Any:
    """A dataclass field that is also a command-line flag. `changes_results=False` marks a flag that changes
    how a job reports or is watched, not what it produces (metric labels, log cadence): it is left out of the
    step fingerprint, so changing it never makes finished work count as undone. `param`: the declared
    hyperparameter (`hyperparams.Param`) the field was made from."""
    meta = {"help": help, "choices": choices, "sep": sep, "repeat": repeat, "group": group, "nargs": nargs,
            "metavar": metavar, "changes_results": changes_results, "param": param}
    return field(default=default, metadata=meta)


def declared_flags(*declarations: type[Declaration]) -> Any:
    """Class decorator (under @dataclass): every field of the declarations becomes a flag of the class, placed
    after the class's own required fields, with the declared type, default and help."""
    def add(cls: type) -> type:
        own = dict(cls.__dict__.get("__annotations__", {}))
        required = [n for n in own if getattr(cls.__dict__.get(n), "default", MISSING) is MISSING
                    and getattr(cls.__dict__.get(n), "default_factory", MISSING) is MISSING]
        annotations = {n: own[n] for n in required}
        for declaration in declarations:
            hints = typing.get_type_hints(declaration)
            for name, info, where in declaration.declared():
                annotations[name] = hints[name]
                default, listed = info.get_default(call_default_factory=True), typing.get_origin(hints[name]) is tuple
                setattr(cls, name, flag(default, (info.description or "") + (" Comma-separated." if listed else ""),
                                        sep="," if listed else None, changes_results=where.changes_results,
                                        param=where))
        annotations.update({n: t for n, t in own.items() if n not in annotations})
        cls.__annotations__ = annotations
        cls.DECLARATIONS = declarations  # type: ignore[attr-defined]
        return cls
    return add


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _base(tp: Any) -> tuple[Any, bool]:
    """(the non-None type, whether None is allowed)."""
    args = typing.get_args(tp)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


class _Options:
    """Behaviour shared by every job's options (a frozen dataclass subclassing this)."""

    COMMAND: ClassVar[str]
    HELP: ClassVar[str]
    DECLARATIONS: ClassVar[tuple[type[Declaration], ...]] = ()  # the hyperparameters among the fields

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        groups: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            meta, (tp, _) = f.metadata, _base(_hints(cls)[f.name])
            kwargs: dict[str, Any] = {"dest": f.name, "help": meta.get("help", "")}
            required = f.default is MISSING
            if not required:
                kwargs["default"] = f.default
            if meta.get("choices"):
                kwargs["choices"] = list(meta["choices"])
            if meta.get("metavar"):
                kwargs["metavar"] = meta["metavar"]
            if tp is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            elif typing.get_origin(tp) is Literal:
                kwargs.update(choices=list(typing.get_args(tp)), type=type(typing.get_args(tp)[0]))
            elif typing.get_origin(tp) is tuple:
                item = typing.get_args(tp)[0]
                if meta.get("repeat"):
                    kwargs.update(action="append", type=item, default=None)
                elif meta.get("nargs"):
                    kwargs.update(nargs=meta["nargs"], type=item, default=None)
                else:
                    kwargs["type"] = _splitter(meta.get("sep") or ",", item)
            else:
                kwargs["type"] = tp
            if required and meta.get("group") is None:
                kwargs["required"] = True
            target: Any = parser
            if meta.get("group"):
                if meta["group"] not in groups:  # not setdefault: it would add an empty group per flag
                    groups[meta["group"]] = parser.add_mutually_exclusive_group()
                target = groups[meta["group"]]
            target.add_argument("--" + f.name.replace("_", "-"), **kwargs)

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace) -> Any:
        values = {}
        for f in dataclasses.fields(cls):
            value = getattr(ns, f.name)
            if isinstance(value, list):
                value = tuple(value)
            elif value is None and f.default is not MISSING and f.default is not None:
                value = f.default  # an unused repeatable flag
            values[f.name] = value
        return cls(**values)

    @classmethod
    def parse(cls, argv: list[str]) -> Any:
        parser = argparse.ArgumentParser(prog=f"kubetune-job {cls.COMMAND}", exit_on_error=False)
        cls.add_arguments(parser)
        return cls.from_namespace(parser.parse_args(argv))

    def argv(self, *, fingerprinted: bool = False) -> list[str]:
        """The flags that reproduce these options (every field that is set; None is left out). With
        `fingerprinted`, only what a step fingerprint covers: the flags that change results, each where it
        differs from its default."""
        out: list[str] = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value, meta = getattr(self, f.name), f.metadata
            if fingerprinted and (not meta.get("changes_results", True) or value == f.default):
                continue
            name = "--" + f.name.replace("_", "-")
            if value is None:
                continue
            if isinstance(value, bool):
                out.append(name if value else "--no-" + f.name.replace("_", "-"))
            elif isinstance(value, tuple):
                if meta.get("repeat"):
                    for item in value:
                        out += [name, str(item)]
                elif meta.get("nargs"):
                    if value:
                        out += [name, *map(str, value)]
                else:
                    out += [name, (meta.get("sep") or ",").join(map(str, value))]
            else:
                out += [name, str(value)]
        return out

    def command_line(self) -> list[str]:
        """`kubetune-job`'s argv: the subcommand and its flags."""
        return [self.COMMAND, *self.argv()]

    def command_line_identity(self) -> list[str]:
        """The part of the command line that shapes the outputs (what a step fingerprint digests)."""
        return [self.COMMAND, *self.argv(fingerprinted=True)]

    def trainer_arguments(self, trainer: str) -> dict[str, Any]:
        """{keyword: value} that `trainer` ("sft": TRL's SFTConfig, "peft": LoraConfig) takes as they are
        from the declared hyperparameters (tuples as lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            where = f.metadata.get("param")
            for keyword in where.keywords(trainer) if where is not None else ():
                value = getattr(self, f.name)
                out[keyword] = list(value) if isinstance(value, tuple) else value
        return out


def _splitter(sep: str, item: type) -> Any:
    def split(text: str) -> tuple[Any, ...]:
        return tuple(item(part.strip()) for part in text.split(sep) if part.strip())

    split.__name__ = f"{item.__name__}-list"
    return split


def defaults(cls: type) -> dict[str, Any]:
    """{field: default} of the fields that have one."""
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not MISSING}


FINGERPRINT_HELP = ("identity of this step's inputs (set by the operator): recorded with the outputs, which "
                    "count as done only for the same fingerprint")


@dataclass(frozen=True)
class PrepareOptions(_Options):
    COMMAND: ClassVar[str] = "prepare"
    HELP: ClassVar[str] = "convert a source dataset into training rows in the chat/tool format"

    format: str = flag(help="source format", choices=FORMATS)
    source: str = flag(help="Hub dataset id, local .jsonl/.json/.parquet file or directory, or s3:// URI")
    output: str = flag(help="directory or s3:// prefix for train.jsonl, eval.jsonl, stats.json")
    source_split: str | None = flag(None, "split of a Hub dataset (default: train_sft for ultrachat, train for xlam)")
    no_call_source: str | None = flag(None, "chat rows (ultrachat format) to pair with unrelated tools as no-call "
                                            "examples")
    no_call_split: str | None = flag(None, "split of a Hub no-call source (default: train_sft)")
    no_call_fraction: float = flag(0.1, "share of the output that are no-call examples (xlam format only)")
    near_miss_share: float = flag(0.3, "share of the no-call examples made from tool requests offered only "
                                       "unfitting tools (the rest are chat turns offered unrelated tools)")
    turns_per_row: int = flag(1, "xlam only: build conversations of up to this many requests sharing one tools "
                                 "block (call and no-call turns mixed at --no-call-fraction); 1 keeps one request "
                                 "per row")
    system_prompt: str | None = flag(None, "system prompt added to every conversation")
    max_samples: int | None = flag(None, "keep at most this many converted rows")
    eval_fraction: float = flag(0.02, "share of rows held out in eval.jsonl")
    seed: int = flag(42, "seed of the shuffles and of the no-call pairing")
    tokenizer: str | None = flag(None, "model reference whose tokenizer measures row length")
    max_tokens: int | None = flag(None, "drop rows that render longer than this")
    max_row_bytes: int | None = flag(None, "drop source rows larger than this (default 1 MiB), as row_too_large")
    fingerprint: str | None = flag(None, FINGERPRINT_HELP, changes_results=False)


@dataclass(frozen=True)
@declared_flags(*DECLARATIONS)
class TrainOptions(_Options):
    """The LoRA and training hyperparameters are the fields declared in `hyperparams`; these are the rest."""

    COMMAND: ClassVar[str] = "train"
    HELP: ClassVar[str] = "one supervised fine-tuning stage with LoRA/QLoRA"

    model: str = flag(help="base model: Hub id, local dir, s3:// URI of a merged model, or bundled:smollm2-135m")
    data: str = flag(help="directory or s3:// prefix holding train.jsonl and eval.jsonl")
    output: str = flag(help="stage directory or s3:// prefix: checkpoints/, adapter/, merged/, progress.json")
    logging_steps: int = flag(1, "log (and update progress.json) every N steps", changes_results=False)
    pushgateway: str | None = flag(None, "Prometheus Pushgateway URL for kubetune_train_* metrics (best effort)",
                                   changes_results=False)
    run_name: str = flag("local", "metric label: the FineTuneRun", changes_results=False)
    stage_name: str = flag("train", "metric label: the stage", changes_results=False)
    namespace: str | None = flag(None, "metric label: the FineTuneRun's namespace", changes_results=False)
    fingerprint: str | None = flag(None, FINGERPRINT_HELP, changes_results=False)

    def validate(self) -> None:
        """Raise ValueError naming the flag of the first value that cannot be right."""
        for declaration in self.DECLARATIONS:
            declaration.check(self)
        if self.logging_steps < 1:
            raise ValueError("--logging-steps must be at least 1")
        if self.max_steps == 0:
            raise ValueError("--max-steps must be positive (or -1 to train for --epochs)")
        if self.distribution == "fsdp" and self.load_in_4bit:
            raise ValueError("--distribution fsdp cannot shard 4-bit (QLoRA) base weights here; use "
                             "--no-load-in-4bit or --distribution ddp")


@dataclass(frozen=True)
class EvaluateOptions(_Options):
    COMMAND: ClassVar[str] = "evaluate"
    HELP: ClassVar[str] = "function-calling accuracy, no-call behaviour and chat quality"

    suite: tuple[str, ...] = flag((), "bfcl-<category>, seed-tools, heldout, chat; NAME:N for its first N items "
                                      "(repeatable)", repeat=True)
    endpoint: str | None = flag(None, "OpenAI-compatible base URL (…/v1); key from KUBETUNE_API_KEY", group="target")
    local_model: str | None = flag(None, "model reference evaluated in-process (transformers)", group="target")
    predictions: str | None = flag(None, "JSONL of {id, tool_calls|text} to score without a model", group="target")
    model: str | None = flag(None, "served model name (with --endpoint)")
    output: str | None = flag(None, "directory or s3:// prefix for report.json and report.md")
    data: tuple[str, ...] = flag((), "prepare output (eval.jsonl) for the heldout and chat suites (repeatable)",
                                 repeat=True)
    limit: int | None = flag(None, "first N items of each suite without its own :N")
    concurrency: int = flag(8, "requests in flight (endpoint)", changes_results=False)
    # On a CPU a decoding step reads every weight whatever the batch: 32 rows cost 13-22 ms a token each against
    # 33-43 ms at 8 (SmolLM2-135M fp32, 2 cores; BENCHMARKS.md, "evaluate"). Rows leave the batch when they end.
    batch_size: int = flag(32, "generation batch (local model)")
    max_new_tokens: int = flag(512, "longest answer generated per item (tool calls are short; chat answers longer)")
    timeout: float = flag(120.0, "seconds per request", changes_results=False)
    retries: int = flag(3, "attempts per request on transient errors", changes_results=False)
    judge_endpoint: str | None = flag(None, "OpenAI-compatible judge for the chat suite")
    judge_model: str | None = flag(None, "model name at the judge endpoint")
    pushgateway: str | None = flag(None, "Prometheus Pushgateway URL for kubetune_eval_* metrics (best effort)", changes_results=False)
    run_name: str = flag("local", "metric label: the FineTuneRun", changes_results=False)
    model_label: str | None = flag(None, "metric label: which model (base, stage name, serve revision)",
                                   changes_results=False)
    serve_name: str | None = flag(None, "metric label: the ModelServe whose revision a promotion gate evaluates "
                                        "(instead of a FineTuneRun)", changes_results=False)
    namespace: str | None = flag(None, "metric label: the FineTuneRun's or ModelServe's namespace", changes_results=False)
    compare: tuple[str, ...] = flag((), "print a before/after table of report.json files instead of evaluating",
                                    nargs="+", metavar="REPORT")
    fingerprint: str | None = flag(None, FINGERPRINT_HELP, changes_results=False)


@dataclass(frozen=True)
class ServeOptions(_Options):
    COMMAND: ClassVar[str] = "serve"
    HELP: ClassVar[str] = "serve a model with an OpenAI-compatible API (transformers serve: the CPU fallback to vLLM)"

    model: str = flag(help="model directory, s3:// URI of a merged model, or bundled:NAME")
    port: int = flag(8000, "port to listen on (loopback)")


@dataclass(frozen=True)
class BenchOptions(_Options):
    COMMAND: ClassVar[str] = "bench"
    HELP: ClassVar[str] = "a concurrency sweep against an OpenAI-compatible endpoint (throughput and latency)"

    endpoint: str = flag(help="OpenAI-compatible base URL (…/v1); key from KUBETUNE_API_KEY")
    model: str = flag(help="served model name")
    concurrency: tuple[int, ...] = flag((1, 8, 32, 64), "comma-separated concurrency levels", sep=",")
    requests: int = flag(64, "requests at each concurrency level")
    max_tokens: int = flag(128, "output tokens per request (a fixed output length: generation ignores EOS)")
    warmup: int = flag(1, "warm-up requests before the sweep (reported apart, not in any level)")
    timeout: float = flag(300.0, "seconds per request before it counts as failed")
    metrics_url: str | None = flag(None, "the server's Prometheus /metrics URL, to cross-check counts "
                                         "(default: derived from --endpoint)")
    output: str | None = flag(None, "directory or s3:// prefix for bench.json")
    pushgateway: str | None = flag(None, "Prometheus Pushgateway URL for kubetune_bench_* metrics (best effort)",
                                   changes_results=False)
    serve_name: str = flag("local", "metric label: the ModelServe", changes_results=False)
    revision: str | None = flag(None, "metric label: the ModelServe revision benchmarked", changes_results=False)
    namespace: str | None = flag(None, "metric label: the ModelServe's namespace", changes_results=False)
    fingerprint: str | None = flag(None, FINGERPRINT_HELP, changes_results=False)


@dataclass(frozen=True)
class ProbeOptions(_Options):
    COMMAND: ClassVar[str] = "probe"
    HELP: ClassVar[str] = ("live tool-call health: a fixed set of call and no-call requests to an OpenAI-compatible "
                           "endpoint, every interval")

    endpoint: str = flag(help="OpenAI-compatible base URL (…/v1); key from KUBETUNE_API_KEY")
    model: str = flag(help="served model name")
    suite: tuple[str, ...] = flag((), "bfcl-<category> or seed-tools, NAME:N for its first N items (repeatable)",
                                  repeat=True)
    data: str | None = flag(None, "the user's own probe set: JSONL rows in prepare's shape (messages ending with "
                                  "the expected assistant turn, tools), BFCL's or seed-tools' (with its tools)")
    interval_seconds: float = flag(60.0, "seconds from the start of one round to the start of the next")
    rounds: int = flag(0, "rounds to run (0: until stopped)")
    max_new_tokens: int = flag(128, "longest answer per request")
    concurrency: int = flag(4, "requests in flight")
    timeout: float = flag(60.0, "seconds per request before it counts as unanswered")
    output: str | None = flag(None, "directory or s3:// prefix for probe.json (the last round, rewritten each round)")
    pushgateway: str | None = flag(None, "Prometheus Pushgateway URL for kubetune_probe_* metrics (best effort)")
    serve_name: str = flag("local", "metric label: the ModelServe")
    revision: str | None = flag(None, "metric label: the revision behind the endpoint")
    namespace: str | None = flag(None, "metric label: the ModelServe's namespace")

    def validate(self) -> None:
        if not self.suite and not self.data:
            raise ValueError("--suite or --data: the probe needs requests to send")
        if self.interval_seconds <= 0 or self.rounds < 0 or self.concurrency < 1 or self.timeout <= 0:
            raise ValueError("--interval-seconds and --timeout must be positive, --rounds >= 0, --concurrency >= 1")


@dataclass(frozen=True)
class AdaptersOptions(_Options):
    COMMAND: ClassVar[str] = "adapters"
    HELP: ClassVar[str] = ("a replica's adapter agent: keeps a vLLM server's runtime LoRA adapters equal to the "
                           "serve's adapter set")

    endpoint: str = flag(help="the vLLM server's root URL (http://127.0.0.1:8000); key from KUBETUNE_API_KEY")
    set: str = flag(help="the adapter set (adapters.json): path or s3:// URI")
    cache: str = flag(help="local directory the adapters are placed in (the server reads them there)")
    output: str | None = flag(None, "directory or s3:// prefix for <replica>.json, what each pass reached")
    replica: str | None = flag(None, "this replica's name in what it writes (default: the host name)")
    interval_seconds: float = flag(15.0, "seconds from the start of one pass to the start of the next")
    passes: int = flag(0, "passes to run (0: until stopped)")

    def validate(self) -> None:
        if self.interval_seconds <= 0 or self.passes < 0:
            raise ValueError("--interval-seconds must be positive and --passes >= 0")


@dataclass(frozen=True)
class FetchOptions(_Options):
    COMMAND: ClassVar[str] = "fetch"
    HELP: ClassVar[str] = "copy a complete model directory from the store and verify it (a serving pod's init step)"

    model: str = flag(help="s3:// URI (or local path) of a complete directory (with its _COMPLETE marker)")
    dest: str = flag(help="local directory to fill")
    adapter: str | None = flag(None, "also fetch a LoRA adapter directory, into <dest>-adapter")


JOBS: dict[str, type[_Options]] = {cls.COMMAND: cls for cls in (PrepareOptions, TrainOptions, EvaluateOptions,
                                                                ServeOptions, BenchOptions, ProbeOptions,
                                                                AdaptersOptions, FetchOptions)}
