"""What produces the answers: an OpenAI-compatible endpoint, a local model in-process, or a file.

Every target turns items into `Prediction`s keyed by item id. Raw model text (local model, offline
`text` predictions, call markup an endpoint left in `content`) is read with `parse_tool_calls`, which
gives what vLLM's hermes parser gives a client, and then goes the way an endpoint's reply goes
(`from_message`): so a model's text counts the same whether we parsed it or vLLM did.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from .. import jsonl, storage
from ..chat_template import END_OF_TURN, decode_call, parse_tool_calls, render
from .suites import Item

log = logging.getLogger(__name__)
API_KEY_ENV = "KUBETUNE_API_KEY"


class TargetError(RuntimeError):
    """The target cannot be used at all (unreachable endpoint, unreadable predictions file)."""


@dataclass
class Prediction:
    calls: list[dict[str, Any]] = field(default_factory=list)  # {"name", "arguments": dict}, as emitted
    text: str = ""  # plain content
    errors: list[str] = field(default_factory=list)  # call markup that did not decode
    latency_s: float | None = None
    failure: str | None = None  # no answer at all (request failed)
    cut_off: bool = False  # generation hit the token limit before the answer ended
    raw: str | None = None  # the whole generated text our parser read (None when a server parsed it)


def from_text(text: str, latency_s: float | None = None, cut_off: bool = False) -> Prediction:
    """Raw generated text, read as a client of vLLM (`--tool-call-parser hermes`) would receive it."""
    parsed = parse_tool_calls(text)
    if parsed.calls:
        # Through the very decoding an endpoint's reply gets (arguments must be a JSON object).
        calls, errors = decode_calls(parsed.wire_calls())
    else:
        calls, errors = [], parsed.errors
    return Prediction(calls=calls, text=parsed.content, errors=errors, latency_s=latency_s, cut_off=cut_off,
                      raw=text)


def from_message(content: str | None, tool_calls: list[Any] | None, latency_s: float | None = None,
                 cut_off: bool = False) -> Prediction:
    """An OpenAI-compatible chat reply (message content and `tool_calls` as dicts). Without tool calls
    the content is read as raw text: a server whose parser did not take call markup leaves it there."""
    if not tool_calls:
        return from_text(content or "", latency_s, cut_off)
    calls, errors = decode_calls(tool_calls)
    return Prediction(calls=calls, text=content or "", errors=errors, latency_s=latency_s, cut_off=cut_off)


# How a chat reply becomes a Prediction: (content, tool_calls, latency_s, cut_off=...).
Reader = Callable[..., Prediction]


def decode_calls(raw_calls: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """OpenAI-style (`{"type", "function": {...}}`) or plain `{"name", "arguments"}` calls; arguments
    may be a JSON string or an object."""
    calls, errors = [], []
    for raw in raw_calls:
        call, error = decode_call(raw.get("function", raw) if isinstance(raw, dict) else raw)
        if error:
            errors.append(error)
        else:
            calls.append(call)
    return calls, errors


# --- offline predictions -------------------------------------------------------------------------

def load_predictions(uri: str) -> dict[str, Prediction]:
    """`{id, tool_calls}` or `{id, text}` per line; a malformed line is an error naming it."""
    loc = storage.location(uri)
    if not loc.exists():
        raise TargetError(f"predictions file {uri} does not exist")
    out: dict[str, Prediction] = {}
    for lineno, row in jsonl.parse_bytes(loc.read_bytes()):
        if isinstance(row, jsonl.BadLine):
            raise TargetError(f"{uri} line {lineno}: not valid JSON ({row.error})")
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise TargetError(f"{uri} line {lineno}: no string 'id'")
        if isinstance(row.get("tool_calls"), list):
            calls, errors = decode_calls(row["tool_calls"])
            pred = Prediction(calls=calls, text=row.get("text") or "", errors=errors)
        elif isinstance(row.get("text"), str):
            pred = from_text(row["text"])
        else:
            raise TargetError(f"{uri} line {lineno}: needs 'tool_calls' (a list) or 'text' (a string)")
        pred.latency_s = row.get("latency_s")
        out[row["id"]] = pred
    return out


# --- OpenAI-compatible endpoint ------------------------------------------------------------------

def openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A conversation in our rows' shape as the chat completions API takes it: earlier calls carry an `id` and
    their `arguments` as a JSON string, and each tool result the `tool_call_id` of the call it answers (in order)."""
    out: list[dict[str, Any]] = []
    pending: list[str] = []
    for n, message in enumerate(messages):
        message = dict(message)
        if message.get("role") == "assistant" and message.get("tool_calls"):
            calls = []
            for k, call in enumerate(message["tool_calls"]):
                fn = dict(call.get("function", call))
                if not isinstance(fn.get("arguments"), str):
                    fn["arguments"] = json.dumps(fn.get("arguments") or {}, ensure_ascii=False)
                call_id = call.get("id") or f"call_{n}_{k}"
                pending.append(call_id)
                calls.append({"id": call_id, "type": "function", "function": fn})
            message["tool_calls"] = calls
        elif message.get("role") == "tool" and not message.get("tool_call_id"):
            message["tool_call_id"] = pending.pop(0) if pending else f"call_{n}"
        out.append(message)
    return out


class EndpointTarget:
    def __init__(self, endpoint: str, model: str, *, concurrency: int = 8, timeout: float = 120.0,
                 retries: int = 3, max_new_tokens: int = 256, reader: Reader = from_message) -> None:
        from openai import OpenAI

        self.endpoint, self.model, self.reader = endpoint, model, reader
        self.concurrency, self.max_new_tokens = max(1, concurrency), max_new_tokens
        self.timeout = timeout
        # The client retries connection errors, 408/409/429 and 5xx with exponential backoff.
        self.client = OpenAI(base_url=endpoint, api_key=os.environ.get(API_KEY_ENV) or "none",
                             timeout=timeout, max_retries=max(0, retries - 1))
        self.vllm = False  # vLLM can also hand back the generated token ids: the raw text is then kept

    def check(self) -> None:
        """Fail fast, with the cause, when the endpoint cannot be reached at all."""
        import openai

        try:
            models = self.client.with_options(max_retries=1).models.list()
            self.vllm = any(getattr(m, "owned_by", None) == "vllm" for m in models.data)
        except openai.APIConnectionError as exc:
            raise TargetError(f"cannot reach endpoint {self.endpoint}: {exc.__cause__ or exc}") from exc
        except openai.APIStatusError as exc:
            raise TargetError(f"endpoint {self.endpoint} answered {exc.status_code} to GET /models: {exc.message}") from exc

    def _one(self, item: Item) -> Prediction:
        import openai

        request: dict[str, Any] = {"model": self.model, "messages": openai_messages(item.messages), "temperature": 0.0,
                                   "max_tokens": self.max_new_tokens}
        if item.tools:
            request["tools"] = item.tools
        if self.vllm:
            request["extra_body"] = {"return_token_ids": True}
        start = time.perf_counter()
        try:
            resp = self.client.chat.completions.create(**request)
        except openai.OpenAIError as exc:
            return Prediction(failure=f"request failed: {type(exc).__name__}: {str(exc)[:200]}")
        latency = time.perf_counter() - start
        choice = resp.choices[0]
        pred = self.reader(choice.message.content, [tc.model_dump() for tc in choice.message.tool_calls or []],
                           latency, cut_off=choice.finish_reason == "length")
        # What the server generated, before its tool parser read it: kept so the reading of a served reply can
        # be compared with an in-process one of the same text (the verdict stays the served reply's).
        if pred.raw is None and self.vllm:
            pred.raw = self._detokenize((choice.model_extra or {}).get("token_ids"))
        return pred

    def _detokenize(self, token_ids: Any) -> str | None:
        if not isinstance(token_ids, list) or not token_ids:
            return None
        root = self.endpoint.rstrip("/").removesuffix("/v1")
        body = json.dumps({"model": self.model, "tokens": token_ids}).encode()
        headers = {"Content-Type": "application/json"}
        if os.environ.get(API_KEY_ENV):
            headers["Authorization"] = f"Bearer {os.environ[API_KEY_ENV]}"
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{root}/detokenize", data=body, headers=headers),
                                        timeout=self.timeout) as resp:
                text = json.loads(resp.read()).get("prompt")
        except (OSError, ValueError):
            return None
        # The ids end with the end-of-turn token that stopped generation; the text a model "said" ends before it.
        return text.split(END_OF_TURN, 1)[0] if isinstance(text, str) else None

    def predict(self, items: list[Item], desc: str = "requests",
                on_done: Callable[[int], None] | None = None, progress: bool = True) -> dict[str, Prediction]:
        """Answers to `items`; `on_done(n)` is told of every `n` items answered."""
        out: dict[str, Prediction] = {}
        with ThreadPoolExecutor(self.concurrency) as pool, \
                tqdm(total=len(items), desc=desc, unit="item", disable=not progress) as bar:
            futures = {pool.submit(self._one, item): item.id for item in items}
            for future in as_completed(futures):
                out[futures[future]] = future.result()
                bar.update()
                if on_done:
                    on_done(1)
        return out


# --- local model in-process -----------------------------------------------------------------------

# Prompts that share at least this many leading tokens are generated apart from the rest (their beginning is then
# encoded once and not padded into other rows).
LONG_SHARED_BEGINNING = 256


class LocalTarget:
    """Greedy generation with transformers, prompts rendered with our template, batched so that prompts that
    begin alike share the encoding of that beginning (`generation`)."""

    def __init__(self, ref: str, *, batch_size: int = 8, max_new_tokens: int = 256) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .. import precision
        from ..models import resolve

        path = resolve(ref)
        self.ref, self.batch_size, self.max_new_tokens = ref, max(1, batch_size), max_new_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.precision = precision.auto(precision.GENERATION)
        log.info("generating in %s: %s", self.precision.name, self.precision.reason)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=self.precision.dtype)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device).eval()
        self._stops = [s for s in (END_OF_TURN, self.tokenizer.eos_token) if s]
        # Generation ends where `generate` would (the model's end-of-sequence ids) or at a stop string that is one
        # token; the text is cut at the first stop string either way.
        eos = self.model.generation_config.eos_token_id
        self._stop_ids = {*(eos if isinstance(eos, list) else [eos] if eos is not None else [])}
        for stop in self._stops:
            ids = self.tokenizer(stop, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                self._stop_ids.add(ids[0])

    def _prompt(self, item: Item) -> str:
        return render({"messages": item.messages, "tools": item.tools or None}, add_generation_prompt=True)

    def _cut(self, text: str) -> str:
        for stop in self._stops:
            text = text.split(stop, 1)[0]
        return text

    def predict(self, items: list[Item], desc: str = "generating",
                on_done: Callable[[int], None] | None = None) -> dict[str, Prediction]:
        """Answers to `items`; `on_done(n)` is told of every `n` items answered."""
        from .generation import greedy

        out: dict[str, Prediction] = {}
        with tqdm(total=len(items), desc=desc, unit="item") as bar:

            def batch_done(rows: int) -> None:
                bar.update(rows)
                if on_done:
                    on_done(rows)

            for group, prompts in self._groups(items):
                generated = greedy(self.model, prompts, max_new_tokens=self.max_new_tokens, stop_ids=self._stop_ids,
                                   pad_id=self.tokenizer.pad_token_id, batch_size=self.batch_size, on_batch=batch_done)
                for item, gen in zip(group, generated, strict=True):
                    text = self._cut(self.tokenizer.decode(gen.ids, skip_special_tokens=False))
                    if self.tokenizer.pad_token:
                        text = text.replace(self.tokenizer.pad_token, "")
                    out[item.id] = from_text(text, gen.seconds, cut_off=not gen.stopped)
        return out

    def _groups(self, items: list[Item]) -> list[tuple[list[Item], list[list[int]]]]:
        """Items to generate together, with their prompts' token ids. A suite whose prompts share a long beginning
        (seed-tools' tools block) is a group of its own, so that beginning is encoded once; the other suites'
        short prompts are pooled, since a decoding step costs about the same for 8 rows as for 20 on a CPU (it
        reads every weight) and a rambling model runs every row to max_new_tokens."""
        from .generation import shared_beginning

        suites: dict[str, list[Item]] = {}
        for item in items:
            suites.setdefault(item.suite, []).append(item)
        groups: list[tuple[list[Item], list[list[int]]]] = []
        pooled: tuple[list[Item], list[list[int]]] = ([], [])
        for group in suites.values():
            prompts = [self.tokenizer(self._prompt(it), add_special_tokens=False)["input_ids"] for it in group]
            if len(prompts) > 1 and shared_beginning(prompts) >= LONG_SHARED_BEGINNING:
                groups.append((group, prompts))
            else:
                pooled[0].extend(group)
                pooled[1].extend(prompts)
        return groups + ([pooled] if pooled[0] else [])

    def chat_loss(self, items: list[Item], max_length: int = 2048) -> dict[str, tuple[float, int]]:
        """Per item: summed cross-entropy over assistant tokens, and their count."""
        import torch

        out: dict[str, tuple[float, int]] = {}
        for item in tqdm(items, desc="chat loss", unit="row"):
            text, spans = render(item.row or {}, return_assistant_mask=True)
            enc = self.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False,
                                 truncation=True, max_length=max_length)
            ids = torch.tensor([enc["input_ids"]], device=self.device)
            mask = [any(s <= a < e for s, e in spans) for a, _ in enc["offset_mapping"]]
            labels = ids.clone()
            labels[0, [i for i, m in enumerate(mask) if not m]] = -100
            with torch.inference_mode():
                logits = self.model(input_ids=ids).logits.float()
            loss = torch.nn.functional.cross_entropy(
                logits[0, :-1], labels[0, 1:], ignore_index=-100, reduction="sum")
            count = int((labels[0, 1:] != -100).sum())
            out[item.id] = (float(loss) if count else 0.0, count)
        return out


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 50 else float("inf")
