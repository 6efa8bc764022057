"""`kubetune-job evaluate`: answer every item of the requested suites, score, write and push the report."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import storage
from ..contract.layout import PROGRESS_FILE, REPORT_FILE, REPORT_MARKDOWN
from ..contract.options import EvaluateOptions
from ..contract.records import Progress, ReportSummary
from ..precision import Precision
from . import report as reports
from . import suites as suite_mod
from .suites import CHAT, Item
from .targets import Prediction

log = logging.getLogger(__name__)


class EvaluateError(RuntimeError):
    """Bad usage or input; the message is the one line the job prints."""


def _compare(paths: tuple[str, ...]) -> int:
    loaded = []
    for path in paths:
        try:
            data = storage.location(path).read_bytes(limit=ReportSummary.max_bytes)
            loaded.append((Path(path).parent.name or path, json.loads(data)))
        except (OSError, storage.StorageError, ValueError) as exc:  # TooLarge is a StorageError
            raise EvaluateError(f"cannot read report {path}: {exc}") from exc
    print(reports.compare(loaded), end="")
    return 0


def _target_name(args: EvaluateOptions) -> str:
    if args.endpoint:
        return f"endpoint {args.endpoint} model {args.model}"
    if args.local_model:
        return f"local {args.local_model}"
    return f"predictions {args.predictions}"


class ItemProgress:
    """`progress.json` beside the report while items are answered (items done of all, the time left at the rate
    so far), so whoever runs the job sees more than "running" (`kubetune run`'s step line reads it). Written at
    most every `EVERY_SECONDS` and at the last item; best effort, as a progress line is: a store that refuses
    it is logged once and the evaluation goes on."""

    EVERY_SECONDS = 5.0

    def __init__(self, output: str | None, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.where = storage.location(output).child(PROGRESS_FILE) if output else None
        self.total, self.done, self.clock = total, 0, clock
        self.started = self.written = clock()
        self.failed = False

    def __call__(self, count: int) -> None:
        self.done = min(self.total, self.done + count)
        now = self.clock()
        if self.where is None or self.failed or (now - self.written < self.EVERY_SECONDS and self.done < self.total):
            return
        self.written = now
        rate = self.done / max(now - self.started, 1e-9)
        record = Progress(state="running", step=self.done, total=self.total, updated_at=time.time(),
                          items_per_second=round(rate, 3),
                          eta_seconds=round((self.total - self.done) / rate, 1) if rate > 0 else None)
        try:
            self.where.write_json(record.dump())
        except (OSError, storage.StorageError) as exc:
            self.failed = True
            log.warning("progress not written to %s (the evaluation goes on): %s", self.where, exc)


def _answer(args: EvaluateOptions, items: list[Item]) -> tuple[dict[str, Prediction], dict[str, Any],
                                                             Precision | None]:
    """Predictions for tool items, extra per-item fields for chat items (loss, judge verdict), and the
    precision a local model generated in (None for an endpoint or a predictions file)."""
    from . import targets

    tool_items = [it for it in items if it.scoring != CHAT]
    chat_items = [it for it in items if it.scoring == CHAT]
    extra: dict[str, dict[str, Any]] = {it.id: {} for it in chat_items}
    preds: dict[str, Prediction] = {}
    generated_in: Precision | None = None
    answered = tool_items + (chat_items if args.judge_endpoint else [])
    if args.predictions:
        preds = targets.load_predictions(args.predictions)
    elif args.endpoint:
        target = targets.EndpointTarget(args.endpoint, args.model, concurrency=args.concurrency,
                                        timeout=args.timeout, retries=args.retries, max_new_tokens=args.max_new_tokens)
        target.check()
        preds = target.predict(answered, on_done=ItemProgress(args.output, len(answered)))
    else:
        local = targets.LocalTarget(args.local_model, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
        generated_in = local.precision
        preds = local.predict(answered, on_done=ItemProgress(args.output, len(answered)))
        for item_id, (loss_sum, tokens) in local.chat_loss(chat_items).items():
            extra[item_id].update(loss_sum=loss_sum, tokens=tokens)
    if args.judge_endpoint and chat_items:
        from .judge import judge

        cases = [(it.id, it.messages, preds[it.id].text, it.reference or "") for it in chat_items
                 if it.id in preds and not preds[it.id].failure]
        for item_id, verdict in judge(args.judge_endpoint, args.judge_model, cases, concurrency=args.concurrency,
                                      timeout=args.timeout, retries=args.retries).items():
            extra[item_id]["judge"] = verdict
    return preds, extra, generated_in


def run(args: EvaluateOptions) -> int:
    from .targets import TargetError

    try:
        if args.compare:
            return _compare(args.compare)
        limits = suite_mod.validate(args.suite, args.limit)
        names = list(limits)
        if not args.output:
            raise EvaluateError("--output is required (directory or s3:// prefix for report.json)")
        if not (args.endpoint or args.local_model or args.predictions):
            raise EvaluateError("say what to evaluate: --endpoint URL --model NAME, --local-model REF or --predictions FILE")
        if args.endpoint and not args.model:
            raise EvaluateError("--endpoint needs --model (the served model name)")
        if CHAT in names and args.predictions:
            raise EvaluateError("the chat suite needs a model (--local-model or --endpoint), not --predictions")
        if CHAT in names and args.endpoint and not args.judge_endpoint:
            raise EvaluateError("the chat suite over an endpoint needs --judge-endpoint (loss needs --local-model)")
        items = [it for name in names for it in suite_mod.load(name, data=args.data, limit=limits[name])]
        preds, extra, generated_in = _answer(args, items)
    except (EvaluateError, suite_mod.SuiteError, TargetError) as exc:
        print(f"kubetune-job evaluate: error: {exc}", file=sys.stderr)
        return 1

    records = []
    for item in items:
        rec = reports.score_item(item, preds.get(item.id))
        if item.scoring == CHAT:
            rec.update(extra.get(item.id, {}))
            rec["scored"] = "tokens" in rec or rec.get("judge") in ("win", "tie", "loss")
        records.append(rec)
    model_label = args.model_label or args.model or args.local_model or Path(args.predictions).stem
    report = reports.build(records, suites=names, target=_target_name(args), model_label=model_label,
                           run_name=args.run_name, precision=generated_in)
    report["fingerprint"] = args.fingerprint
    out = storage.location(args.output)
    out.child(REPORT_FILE).write_json(report)
    table = reports.markdown(report)
    out.child(REPORT_MARKDOWN).write_text(table)
    print(table)
    if args.pushgateway:
        from .metrics import push

        push(args.pushgateway, report, run=args.run_name, model=model_label, serve=args.serve_name,
             namespace=args.namespace)  # best-effort: never the exit code
    if not report["complete"]:
        missing = [r for r in records if not r.get("scored")]
        print(f"kubetune-job evaluate: error: report incomplete: {len(missing)} of {len(records)} items have no "
              f"answer (first: {missing[0]['id']}: {missing[0].get('reason') or 'not scored'})", file=sys.stderr)
        return 1
    log.info("report written to %s", out.child(REPORT_FILE))
    return 0
