"""The requests a benchmark sends: tool-calling chats offering the origin document's seven seed tools,
and plain chat turns from the bundled chat set, one of each in turn.

These are the two kinds of traffic a tuned model serves. A tool request carries seven JSON schemas
(a long shared prefix); a chat turn is a short multi-turn conversation ending with a user turn. The
order is fixed, so two runs, or two servers, get the same requests in the same order; each level of
a sweep takes the next requests, so levels do not replay each other's prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

TOOLS = "tools"
CHAT = "chat"
CHAT_SET = "bundled:quickstart-chat"


@dataclass(frozen=True)
class Request:
    id: str
    kind: str  # TOOLS or CHAT
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None


@cache
def tool_chats() -> tuple[Request, ...]:
    from ..evaluate.suites import seed_items

    return tuple(Request(id=f"tools-{it.id}", kind=TOOLS, messages=it.messages, tools=it.tools)
                 for it in seed_items())


@cache
def chat_turns() -> tuple[Request, ...]:
    """Each conversation of the chat set up to its last user turn (what the model answers next)."""
    from ..data.sources import MalformedRow, Source

    out = []
    for number, row in enumerate(Source(CHAT_SET).rows(), 1):
        if isinstance(row, MalformedRow):
            continue
        messages = [{"role": m["role"], "content": m["content"]} for m in row.get("messages", [])]
        last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
        if last_user is not None:
            out.append(Request(id=f"chat-{number}", kind=CHAT, messages=messages[: last_user + 1]))
    return tuple(out)


def request(index: int) -> Request:
    """The `index`-th request of the fixed sequence: tool chats and chat turns alternate, each list
    cycling when it runs out."""
    pool = tool_chats() if index % 2 == 0 else chat_turns()
    return pool[(index // 2) % len(pool)]


class Workload:
    """Hands out the sequence in order: `take(n)` returns the next n requests."""

    def __init__(self) -> None:
        self.sent = 0

    def take(self, n: int) -> list[Request]:
        out = [request(i) for i in range(self.sent, self.sent + n)]
        self.sent += n
        return out
