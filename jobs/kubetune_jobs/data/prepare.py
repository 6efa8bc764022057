"""`kubetune-job prepare`: a source dataset -> `train.jsonl`, `eval.jsonl` and `stats.json`.

Deterministic: the same inputs, flags and seed give byte-identical outputs, and a re-run whose
outputs are present and verify against the hashes in `stats.json` does nothing. `stats.json` is
written last and is what marks the step complete.

No row can stop the job: whatever is wrong with one (unreadable bytes, JSON Python accepts but JSON
does not, a tool schema that cannot be used, a row over the size limit, or an error nobody foresaw)
drops that row under a stable snake_case reason counted in `stats.json`, with a few examples.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from .. import jsonl, storage
from ..contract.layout import EVAL_FILE, PREPARE_FILES, STATS_FILE, TRAIN_FILE
from ..contract.options import PrepareOptions
from . import conversations, convert, strict_json
from .sources import MAX_ROW_BYTES, MalformedRow, Source

log = logging.getLogger(__name__)
EXAMPLES_PER_REASON = 3
DEFAULT_SPLITS = {"ultrachat": "train_sft", "xlam": "train"}


@dataclass
class Tally:
    """Rows of one source read, and dropped by reason (with a few examples of each, for debugging data).
    Every row read is either in the output or counted here once, under the step that dropped it."""

    read: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def drop(self, reason: str, detail: str, rows: int = 1) -> None:
        self.dropped[reason] += rows
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES_PER_REASON:
            shown.append(detail[:200])


def source_rows(row: dict[str, Any], fmt: str) -> int:
    """How many rows of the main source an output row holds: a chat row is one; an xlam row holds one per
    turn that calls (each xlam source row is one request and its calls, and conversations group them);
    its no-call turns are generated, from the no-call source or from another row's request."""
    if fmt != "xlam":
        return 1
    return sum(1 for m in row["messages"] if m["role"] == "assistant" and m.get("tool_calls"))


def _row_key(row: dict[str, Any]) -> str:
    # Converters build messages with a fixed key order, so the plain encoding identifies a conversation.
    return json.dumps(row["messages"])


def _convert_one(converter: Any, raw: dict[str, Any], system_prompt: str | None,
                 max_row_bytes: int | None) -> dict[str, Any]:
    """One converted row, or Dropped: also for what the converter did not foresee, so no row ends the job.

    With `max_row_bytes` (rows not checked as they were read), the messages are checked here; tools
    were checked once when converted."""
    try:
        row = converter(raw, system_prompt)
        if max_row_bytes is not None and strict_json.check(row["messages"]) > max_row_bytes:
            raise convert.Dropped("row_too_large", f"more than {max_row_bytes} bytes of text")
        return row
    except convert.Dropped:
        raise
    except strict_json.InvalidJSON as exc:
        raise convert.Dropped(exc.reason, exc.detail) from None
    except RecursionError:
        raise convert.Dropped("too_deeply_nested", "nested deeper than the converter can follow") from None
    except Exception as exc:  # noqa: BLE001 - one unforeseen bad row must not lose the others
        log.debug("row conversion failed", exc_info=True)
        raise convert.Dropped("conversion_error", f"{type(exc).__name__}: {exc}") from None


def convert_rows(
    source: Source, fmt: str, system_prompt: str | None, tally: Tally, desc: str
) -> list[dict[str, Any]]:
    converter = convert.CONVERTERS[fmt]
    gate = None if source.strict else source.max_row_bytes
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for raw in tqdm(source.rows(), desc=desc, unit=" rows", mininterval=1.0, leave=False):
        tally.read += 1
        if isinstance(raw, MalformedRow):
            tally.drop(raw.reason, f"line {raw.line}: {raw.error}")
            continue
        try:
            row = _convert_one(converter, raw, system_prompt, gate)
        except convert.Dropped as exc:
            tally.drop(exc.reason, f"row {tally.read}: {exc.detail}" if exc.detail else f"row {tally.read}")
            continue
        key = _row_key(row)
        if key in seen:
            tally.drop("duplicate", row["messages"][-2]["content"][:80] if len(row["messages"]) > 1 else "")
            continue
        seen.add(key)
        out.append(row)
    return out


def _percentiles(values: list[int]) -> dict[str, int]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"min": ordered[0], "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": ordered[-1]}


def _measure(rows: list[dict[str, Any]], tokenizer_ref: str | None) -> list[int | None]:
    """Length of each row: tokens of its rendered text with a tokenizer, else characters."""
    if not tokenizer_ref:
        # Converted tools are shared objects, so each one is measured once.
        tool_chars: dict[int, int] = {}
        for r in rows:
            for t in r["tools"]:
                if id(t) not in tool_chars:
                    tool_chars[id(t)] = len(json.dumps(t))
        return [
            sum(len(m["content"]) for m in r["messages"]) + sum(tool_chars[id(t)] for t in r["tools"])
            for r in rows
        ]
    from transformers import AutoTokenizer

    from .. import models
    from ..chat_template import render

    tokenizer = AutoTokenizer.from_pretrained(models.resolve(tokenizer_ref))
    texts = [_render(render, r) for r in tqdm(rows, desc="rendering", unit=" rows", leave=False)]
    lengths: list[int | None] = [None] * len(texts)
    ok = [i for i, t in enumerate(texts) if t is not None]
    for start in range(0, len(ok), 1024):
        chunk = ok[start:start + 1024]
        batch = tokenizer([texts[i] for i in chunk], add_special_tokens=False)["input_ids"]
        for i, ids in zip(chunk, batch, strict=True):
            lengths[i] = len(ids)
    return lengths


def _render(render: Any, row: dict[str, Any]) -> str | None:
    try:
        return render(row)
    except Exception:  # noqa: BLE001 - a row the template cannot render is dropped, not fatal
        log.debug("row could not be rendered", exc_info=True)
        return None


def _turn(row: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    return {"kind": convert.turn_kind(answer, bool(row["tools"])), "calls": len(answer.get("tool_calls") or [])}


def serialize(rows: list[dict[str, Any]]) -> bytes:
    return jsonl.dumps(rows)


def prepare(
    args: PrepareOptions, source: Source, nc_source: Source | None,
    conversation_settings: conversations.Settings = conversations.DEFAULT,
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Build the output files and their stats; pure apart from reading the sources.

    `conversation_settings` mixes `--turns-per-row` conversations; the job always uses the defaults,
    benchmarks and tests try others.
    """
    rng = random.Random(args.seed)
    tally = Tally()
    rows = convert_rows(source, args.format, args.system_prompt, tally, f"converting {args.format}")
    rng.shuffle(rows)
    if args.max_samples is not None and len(rows) > args.max_samples:
        tally.drop("max_samples", f"{len(rows) - args.max_samples} rows beyond --max-samples {args.max_samples}",
                   rows=len(rows) - args.max_samples)
        rows = rows[: args.max_samples]
    generated_dropped: Counter = Counter()  # generated no-call rows dropped below (no source row is lost)

    def drop_output(row: dict[str, Any], reason: str, detail: str) -> None:
        held = source_rows(row, args.format)
        if held:
            tally.drop(reason, detail, rows=held)
        else:
            generated_dropped[reason] += 1

    no_call_stats: dict[str, Any] = {"fraction": 0.0, "generated": 0}
    if args.format == "xlam" and args.no_call_fraction > 0 and nc_source is None:
        raise ValueError(
            f"--no-call-fraction {args.no_call_fraction} needs --no-call-source (chat rows to pair "
            "with unrelated tools), or set --no-call-fraction 0"
        )
    nc_tally = Tally()
    chats: list[dict[str, Any]] = []
    if args.format == "xlam" and args.no_call_fraction > 0:
        chats = convert_rows(nc_source, "ultrachat", args.system_prompt, nc_tally, "converting no-call chats")
        rng.shuffle(chats)
    if args.format == "xlam" and args.turns_per_row > 1:
        rows, counts = conversations.group(rows, chats, rng, turns=args.turns_per_row,
                                           no_call_fraction=args.no_call_fraction,
                                           near_miss_share=args.near_miss_share,
                                           settings=conversation_settings)
        rng.shuffle(rows)
        no_call_stats = {
            "fraction": args.no_call_fraction, "generated": counts["from_chat"] + counts["near_miss"],
            "from_chat": counts["from_chat"], "near_miss": counts["near_miss"],
            "near_miss_sharing_words": counts["hard_near_miss"], "short": counts["short_of_no_call"],
            "conversations_without_calls": counts["no_call_blocks"],
            "source_rows_read": nc_tally.read,
            "source_dropped": dict(sorted(nc_tally.dropped.items())),
        }
    elif args.format == "xlam" and args.no_call_fraction > 0:
        shared = {id(t): t for r in rows for t in r["tools"]}
        pool = sorted({json.dumps(t, sort_keys=True): t for t in shared.values()}.items())
        tools = [t for _, t in pool]
        wanted = round(len(rows) * args.no_call_fraction / (1 - args.no_call_fraction))
        # Part of the no-call rows are near misses: a real tool request offered only tools that cannot
        # serve it. Chat rows alone teach "small talk gets no call" but not "this task fits no tool".
        want_near = round(wanted * args.near_miss_share)
        near = []
        for row in rng.sample(rows, len(rows)):
            if len(near) == want_near:
                break
            try:
                near.append(convert.near_miss(row, tools, rng))
            except convert.Dropped as exc:
                nc_tally.drop(exc.reason, exc.detail)
        generated = []
        for chat in chats:
            if len(generated) + len(near) == wanted:
                break
            try:
                generated.append(convert.no_call(chat, tools, rng))
            except convert.Dropped as exc:
                nc_tally.drop(exc.reason, exc.detail)
        rows.extend(generated + near)
        rng.shuffle(rows)
        no_call_stats = {
            "fraction": args.no_call_fraction, "wanted": wanted, "generated": len(generated) + len(near),
            "from_chat": len(generated), "near_miss": len(near),
            "source_rows_read": nc_tally.read, "source_dropped": dict(sorted(nc_tally.dropped.items())),
        }

    lengths = _measure(rows, args.tokenizer)
    if any(n is None for n in lengths):
        for row, n in zip(rows, lengths, strict=True):
            if n is None:
                drop_output(row, "unrenderable", row["messages"][-1]["content"][:80] if row["messages"] else "")
        kept_rows = [(r, n) for r, n in zip(rows, lengths, strict=True) if n is not None]
        rows, lengths = [r for r, _ in kept_rows], [n for _, n in kept_rows]
    if args.max_tokens:
        if not args.tokenizer:
            raise ValueError("--max-tokens needs --tokenizer to measure rows")
        kept = []
        for row, length in zip(rows, lengths, strict=True):
            if length > args.max_tokens:
                drop_output(row, "too_long", f"{length} tokens > {args.max_tokens}")
            else:
                kept.append((row, length))
        rows, lengths = [r for r, _ in kept], [n for _, n in kept]
    if not rows:
        reasons = ", ".join(f"{k}={v}" for k, v in tally.dropped.most_common()) or "the source is empty"
        raise ValueError(f"no usable rows in {args.source} ({tally.read} read; dropped: {reasons})")

    if generated_dropped:
        no_call_stats["dropped"] = dict(sorted(generated_dropped.items()))
    turns = [_turn(row, m) for row in rows for m in row["messages"] if m["role"] == "assistant"]
    n_eval = min(len(rows) - 1, max(1, round(len(rows) * args.eval_fraction))) if args.eval_fraction > 0 else 0
    files = {EVAL_FILE: serialize(rows[:n_eval]), TRAIN_FILE: serialize(rows[n_eval:])}
    hashes = {name: storage.sha256_bytes(data) for name, data in files.items()}
    stats = {
        "format": args.format,
        "source": args.source,
        # Source rows: rows_read = rows_kept + the sum of dropped, each dropped row under one reason.
        "rows_read": tally.read,
        "rows_kept": sum(source_rows(r, args.format) for r in rows),
        "dropped": dict(sorted(tally.dropped.items())),
        "dropped_examples": dict(sorted(tally.examples.items())),
        # Lines written: the kept rows, alone or grouped into conversations, and the generated no-call rows.
        "rows_out": len(rows),
        "train_rows": len(rows) - n_eval,
        "eval_rows": n_eval,
        "kinds": dict(sorted(Counter(t["kind"] for t in turns).items())),
        "no_call": no_call_stats,
        "no_call_share": round(sum(t["kind"] == "no_call" for t in turns) / len(turns), 4),
        "tools_per_row": {str(k): v for k, v in sorted(Counter(len(r["tools"]) for r in rows).items())},
        "turns_per_row": {str(k): v for k, v in sorted(Counter(
            sum(m["role"] == "assistant" for m in r["messages"]) for r in rows).items())},
        "calls_per_turn": {str(k): v for k, v in sorted(Counter(t["calls"] for t in turns).items())},
        "length": {"unit": "tokens" if args.tokenizer else "characters", **_percentiles(lengths)},
        "files": hashes,
        "content_hash": storage.sha256_bytes(files[TRAIN_FILE] + files[EVAL_FILE]),
    }
    return files, stats


def sources(args: PrepareOptions) -> tuple[Source, Source | None]:
    limit = args.max_row_bytes or MAX_ROW_BYTES
    main = Source(args.source, args.source_split or DEFAULT_SPLITS[args.format], limit)
    no_call = None
    if args.no_call_source:
        no_call = Source(args.no_call_source, args.no_call_split or DEFAULT_SPLITS["ultrachat"], limit)
    return main, no_call


def fingerprint(args: PrepareOptions, main: Source, no_call: Source | None,
                conversation_settings: conversations.Settings = conversations.DEFAULT) -> str:
    """Everything the output depends on: the flags, the conversation settings and the sources' content
    (or Hub id and split)."""
    # The step fingerprint says which run asked, not what the rows are: it is recorded, not hashed.
    params = {k: v for k, v in sorted(dataclasses.asdict(args).items()) if k not in ("output", "fingerprint")}
    if conversation_settings != conversations.DEFAULT:  # the defaults add nothing: earlier outputs verify
        params["conversation_settings"] = dataclasses.asdict(conversation_settings)
    params["source_fingerprint"] = main.fingerprint()
    if no_call is not None:
        params["no_call_fingerprint"] = no_call.fingerprint()
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def verify(out: storage.Location, expected_fingerprint: str | None = None) -> dict[str, Any] | None:
    """The stats of a complete, intact output at `out` (matching the fingerprint if given), else None."""
    try:
        stats = out.child(STATS_FILE).read_json()
    except (FileNotFoundError, ValueError):  # absent, or not JSON (UnicodeDecodeError is a ValueError)
        return None
    # The names come from the store: only our own output files are ever looked up.
    if not isinstance(stats, dict) or not isinstance(stats.get("files"), dict) or set(stats["files"]) != set(
            PREPARE_FILES):
        return None
    if expected_fingerprint is not None and stats.get("fingerprint") != expected_fingerprint:
        return None
    for name, digest in stats["files"].items():
        try:
            if storage.sha256_bytes(out.child(name).read_bytes()) != digest:
                return None
        except FileNotFoundError:
            return None
    return stats


def _summary(stats: dict[str, Any], out: storage.Location, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"prepare {stats['format']}: {stats['source']}", show_header=False)
    table.add_row("rows read", str(stats["rows_read"]))
    table.add_row("dropped", ", ".join(f"{k} {v}" for k, v in stats["dropped"].items()) or "none")
    table.add_row("written", f"{stats['train_rows']} train + {stats['eval_rows']} eval")
    table.add_row("turns by kind", ", ".join(f"{k} {v}" for k, v in stats["kinds"].items()))
    table.add_row("no-call share", f"{stats['no_call_share']:.1%}")
    length = stats["length"]
    if "p50" in length:
        table.add_row(f"length ({length['unit']})", f"p50 {length['p50']}, p90 {length['p90']}, max {length['max']}")
    table.add_row("output", out.uri)
    table.add_row("content hash", stats["content_hash"][:16])
    table.add_row("took", f"{seconds:.1f} s")
    Console(stderr=True).print(table)


def run(args: PrepareOptions, conversation_settings: conversations.Settings = conversations.DEFAULT) -> int:
    started = time.perf_counter()
    out = storage.location(args.output)
    out.check()
    if not 0 <= args.no_call_fraction < 1:
        raise ValueError("--no-call-fraction must be in [0, 1)")
    if not 0 <= args.eval_fraction < 1:
        raise ValueError("--eval-fraction must be in [0, 1)")
    if args.turns_per_row < 1:
        raise ValueError("--turns-per-row must be at least 1")
    if args.max_row_bytes is not None and args.max_row_bytes < 1:
        raise ValueError("--max-row-bytes must be at least 1")
    main, no_call = sources(args)
    expected = fingerprint(args, main, no_call, conversation_settings)
    done = verify(out, expected)
    if done is not None:
        log.info("%s already holds this preparation (content %s); nothing to do", out, done["content_hash"][:16])
        if done.get("step_fingerprint") != args.fingerprint:
            out.child(STATS_FILE).write_json({**done, "step_fingerprint": args.fingerprint})
        return 0
    files, stats = prepare(args, main, no_call, conversation_settings)
    stats["fingerprint"] = expected
    stats["step_fingerprint"] = args.fingerprint
    for name in PREPARE_FILES:
        out.child(name).write_bytes(files[name])
    out.child(STATS_FILE).write_json(stats)
    _summary(stats, out, time.perf_counter() - started)
    return 0
