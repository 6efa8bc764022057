"""Pairwise LLM judge for the chat suite: the model's answer against the held-out reference answer."""

from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .targets import API_KEY_ENV

PROMPT = """You compare two answers to the same conversation. Reply with exactly one letter:
A if answer A is better, B if answer B is better, or T if they are equally good.

Conversation:
{conversation}

Answer A:
{a}

Answer B:
{b}

Verdict (A, B or T):"""


def _conversation(messages: list[dict[str, Any]]) -> str:
    return "\n".join(f"{m['role']}: {m.get('content') or ''}" for m in messages)


def judge(endpoint: str, model: str | None, cases: list[tuple[str, list[dict[str, Any]], str, str]], *,
          concurrency: int = 4, timeout: float = 120.0, retries: int = 3) -> dict[str, str]:
    """`cases` are (id, prompt messages, candidate, reference); returns id -> win | tie | loss | error."""
    from openai import OpenAI, OpenAIError

    client = OpenAI(base_url=endpoint, api_key=os.environ.get(API_KEY_ENV) or "none", timeout=timeout,
                    max_retries=max(0, retries - 1))
    judge_model = model or client.models.list().data[0].id

    def one(case: tuple[str, list[dict[str, Any]], str, str]) -> tuple[str, str]:
        item_id, messages, candidate, reference = case
        # Position bias is cancelled out over items: the candidate's side is a hash of the id.
        swap = hashlib.sha256(item_id.encode()).digest()[0] % 2 == 1
        a, b = (reference, candidate) if swap else (candidate, reference)
        try:
            resp = client.chat.completions.create(
                model=judge_model, temperature=0.0, max_tokens=4,
                messages=[{"role": "user", "content": PROMPT.format(conversation=_conversation(messages), a=a, b=b)}])
        except OpenAIError:
            return item_id, "error"
        match = re.search(r"\b([ABT])\b", (resp.choices[0].message.content or "").upper())
        if not match:
            return item_id, "error"
        letter = match.group(1)
        if letter == "T":
            return item_id, "tie"
        return item_id, "win" if (letter == "A") != swap else "loss"

    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        return dict(pool.map(one, cases))
