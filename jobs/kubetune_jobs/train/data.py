"""Training rows -> token ids and labels, with the loss on assistant output only.

Both backends use this one implementation. Rows are rendered with the one Qwen2.5 template
(`chat_template.render`), which also returns the character spans of assistant output (`<tool_call>`
blocks and `<|im_end|>` included); the tokenizer's offset mapping turns those spans into token labels.
Every token that does not overlap an assistant span gets -100, so system, user and tool-response text
never contribute to the loss.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .. import chat_template, jsonl, storage
from ..contract.layout import EVAL_FILE, TRAIN_FILE

log = logging.getLogger(__name__)
IGNORE_INDEX = -100


class DataError(ValueError):
    """The prepared data is missing or unusable; the message names the file and the cause."""


def read_rows(loc: storage.Location, *, required: bool) -> list[dict[str, Any]]:
    """Rows of one JSONL file; a missing optional file is an empty list."""
    if not loc.exists():
        if required:
            raise DataError(f"missing dataset: {loc.uri} does not exist (run `kubetune-job prepare` first)")
        return []
    rows = []
    for lineno, row in jsonl.parse_bytes(loc.read_bytes()):
        if isinstance(row, jsonl.BadLine):
            raise DataError(f"{loc.uri} line {lineno} is not JSON: {row.error}")
        if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
            raise DataError(f"{loc.uri} line {lineno} has no 'messages' list")
        rows.append(row)
    return rows


def tokenize_row(row: dict[str, Any], tokenizer: Any, max_length: int | None = None) -> dict[str, list[int]]:
    """`input_ids` of the rendered row and `labels` equal to them on assistant output, -100 elsewhere."""
    text, spans = chat_template.render(row, return_assistant_mask=True)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(enc["input_ids"])
    labels = [IGNORE_INDEX] * len(ids)
    # Offsets and spans are both sorted, so one forward walk assigns every token.
    span_idx = 0
    for i, (start, end) in enumerate(enc["offset_mapping"]):
        while span_idx < len(spans) and spans[span_idx][1] <= start:
            span_idx += 1
        if span_idx < len(spans) and start < spans[span_idx][1] and end > spans[span_idx][0]:
            labels[i] = ids[i]
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "labels": labels}


@dataclass
class Tokenized:
    rows: list[dict[str, list[int]]]
    dropped: int

    @property
    def tokens(self) -> int:
        return sum(len(r["input_ids"]) for r in self.rows)


def tokenize_rows(rows: list[dict[str, Any]], tokenizer: Any, max_length: int) -> Tokenized:
    """Tokenize and truncate; rows left with no trained token (assistant past `max_length`) are dropped."""
    kept, dropped = [], 0
    for row in rows:
        item = tokenize_row(row, tokenizer, max_length)
        if any(label != IGNORE_INDEX for label in item["labels"]):
            kept.append(item)
        else:
            dropped += 1
    return Tokenized(kept, dropped)


def load_datasets(data_uri: str, tokenizer: Any, max_length: int) -> tuple[Any, Any | None, dict[str, int]]:
    """Train and (optional) eval `datasets.Dataset`s of input_ids/labels, plus counts for the summary."""
    from datasets import Dataset

    root = storage.location(data_uri)
    train_rows = read_rows(root.child(TRAIN_FILE), required=True)
    eval_rows = read_rows(root.child(EVAL_FILE), required=False)
    if not train_rows:
        raise DataError(f"empty dataset: {root.child(TRAIN_FILE).uri} holds no rows")
    train = tokenize_rows(train_rows, tokenizer, max_length)
    if not train.rows:
        raise DataError(
            f"empty dataset after filtering: all {len(train_rows)} rows of {root.child(TRAIN_FILE).uri} have "
            f"their assistant output beyond --max-seq-length {max_length}"
        )
    evald = tokenize_rows(eval_rows, tokenizer, max_length)
    stats = {"train_rows": len(train.rows), "train_dropped": train.dropped, "train_tokens": train.tokens,
             "eval_rows": len(evald.rows), "eval_dropped": evald.dropped}
    if train.dropped:
        log.warning("dropped %d training rows with no assistant token within %d tokens", train.dropped, max_length)
    eval_ds = Dataset.from_list(evald.rows) if evald.rows else None
    return Dataset.from_list(train.rows), eval_ds, stats
