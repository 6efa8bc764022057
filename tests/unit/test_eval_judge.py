"""The chat suite's pairwise judge over real HTTP, against a judge service whose taste we know.

The judge is a third-party OpenAI-compatible endpoint; here it is a small HTTP server on loopback that
prefers whichever answer says "good" (or always answers one fixed reply). What is tested is ours: the
candidate is shown on both sides across items, and each letter is mapped back to win/tie/loss for the
candidate whichever side it was on; unusable replies and failed requests become `error`, not a verdict.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kubetune_jobs.evaluate.judge import judge

Reply = Callable[[str], tuple[int, str]]


def prefers_good(prompt: str) -> tuple[int, str]:
    a = re.search(r"Answer A:\n(.*?)\n\nAnswer B:", prompt, re.S).group(1)
    b = re.search(r"Answer B:\n(.*?)\n\nVerdict", prompt, re.S).group(1)
    return 200, "T" if ("good" in a) == ("good" in b) else ("A" if "good" in a else "B")


@pytest.fixture
def judge_service() -> Iterator[Callable[[Reply], tuple[str, list[str]]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(reply: Reply) -> tuple[str, list[str]]:
        prompts: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self.send(200, {"object": "list", "data": [{"id": "judge-1", "object": "model", "created": 0,
                                                            "owned_by": "test"}]})

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = request["messages"][0]["content"]
                prompts.append(prompt)
                status, text = reply(prompt)
                if status != 200:
                    self.send(status, {"error": {"message": "judge unavailable"}})
                    return
                self.send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": request["model"],
                                "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": text}}]})

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1", prompts

    yield start
    for server in servers:
        server.shutdown()


def cases(candidate: str, reference: str, n: int = 12) -> list[tuple[str, list[dict], str, str]]:
    return [(f"chat-{i}", [{"role": "user", "content": f"question {i}"}], candidate, reference) for i in range(n)]


@pytest.mark.parametrize(("candidate", "reference", "verdict"), [
    ("a good answer", "a poor answer", "win"),
    ("a poor answer", "a good answer", "loss"),
    ("a good answer", "another good answer", "tie"),
])
def test_verdicts_follow_the_candidate_whichever_side_it_is_on(judge_service, candidate: str, reference: str,
                                                               verdict: str) -> None:
    endpoint, prompts = judge_service(prefers_good)
    verdicts = judge(endpoint, None, cases(candidate, reference), concurrency=3)
    assert verdicts == {f"chat-{i}": verdict for i in range(12)}
    # Position bias cancels only if the candidate really is shown first for some items and second for others.
    first = sum(p.index(candidate) < p.index(reference) for p in prompts)
    assert 0 < first < len(prompts) == 12
    assert all("user: question" in p for p in prompts)


@pytest.mark.parametrize("reply", [(200, "I cannot decide."), (200, ""), (500, "")], ids=["prose", "empty", "5xx"])
def test_unusable_replies_and_failed_requests_are_errors_not_verdicts(judge_service, reply: tuple[int, str]) -> None:
    endpoint, prompts = judge_service(lambda prompt: reply)
    verdicts = judge(endpoint, "judge-1", cases("a good answer", "a poor answer", n=3), retries=2, timeout=10)
    assert verdicts == {f"chat-{i}": "error" for i in range(3)}
    assert len(prompts) == (6 if reply[0] == 500 else 3)  # a failing service is retried, a bad reply is not
