"""Streaming chat requests through the `openai` client, each timed chunk by chunk.

Every request streams, so the time to its first token is measured, not inferred. Token counts come
from the server's own `usage` (the stream's last chunk, `stream_options.include_usage`), never from
counting chunks: one chunk may carry several tokens, and a tool-call parser holds some back.

A request that fails (an error status, a broken stream, a stream that ends before its usage, or one
that runs past `timeout` seconds) becomes a `Sample` with its `error` set: it is counted, never
dropped. Requests are not retried, since a retry would hide the failure and distort the latency.

What counts as the first token depends on the server. vLLM sends its opening chunk (the assistant
role) together with the first generated token, and its own `bench serve` times the first token
there; other servers (`transformers serve`) announce the role before generating, so for them the
first token is the first chunk that carries output (content, a tool call, reasoning). Likewise the
fixed output length: vLLM's `ignore_eos` makes every request generate exactly `max_tokens`;
elsewhere `max_tokens` is only a limit and the usage says how many tokens came. A request whose
every token a server's tool-call parser held back (`transformers serve` does so with unfinished
call markup) completes with its usage but no first-token time: it counts in the throughput and the
end-to-end latency, not in TTFT, TPOT or ITL.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from .workload import Request

VLLM = "vllm"  # a vLLM server (its /v1/models entries are `owned_by: vllm`)
OTHER = "openai"  # any other OpenAI-compatible server
PROBE_TIMEOUT_S = 30.0  # GET /models, before the sweep and when a level had failures


class EndpointError(RuntimeError):
    """The endpoint cannot be benchmarked at all (unreachable, refuses us, does not serve the model)."""


@dataclass
class Sample:
    """One request's outcome; times are `time.perf_counter()` seconds."""

    request_id: str
    kind: str
    start: float
    end: float = 0.0
    ttft: float | None = None  # seconds from sending to the first token
    itl: list[float] = field(default_factory=list)  # gaps between the chunks that follow it
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def e2e(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Server:
    kind: str  # VLLM or OTHER
    models: tuple[str, ...]


def _carries_output(delta: Any) -> bool:
    return bool(getattr(delta, "content", None) or getattr(delta, "tool_calls", None)
                or getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None))


class Client:
    """Requests to one served model at one endpoint. Use `async with`; `probe()` first."""

    def __init__(self, endpoint: str, model: str, *, max_tokens: int, timeout: float, api_key: str | None) -> None:
        from openai import AsyncOpenAI

        self.endpoint, self.model = endpoint, model
        self.max_tokens, self.timeout = max_tokens, timeout
        self.server = Server(OTHER, ())
        # No retries: a failed request is a figure of the benchmark, not something to paper over.
        self._client = AsyncOpenAI(base_url=endpoint, api_key=api_key or "none", timeout=timeout, max_retries=0)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.close()

    async def _models(self, timeout: float) -> list[Any]:
        import openai

        try:
            page = await self._client.with_options(timeout=timeout, max_retries=1).models.list()
        except openai.APIConnectionError as exc:
            raise EndpointError(f"cannot reach endpoint {self.endpoint}: {exc.__cause__ or exc}") from exc
        except openai.APIStatusError as exc:
            hint = " (is KUBETUNE_API_KEY the server's key?)" if exc.status_code in (401, 403) else ""
            raise EndpointError(f"endpoint {self.endpoint} answered {exc.status_code} to GET /models{hint}: "
                                f"{exc.message}") from exc
        return list(page.data)

    async def probe(self) -> Server:
        """What the endpoint is; an EndpointError unless it answers and serves `model`."""
        models = await self._models(timeout=PROBE_TIMEOUT_S)
        names = tuple(m.id for m in models)
        if self.model not in names:
            raise EndpointError(f"model {self.model!r} is not served at {self.endpoint} "
                                f"(it serves: {', '.join(names) or 'nothing'})")
        kind = VLLM if any(getattr(m, "owned_by", None) == VLLM for m in models) else OTHER
        self.server = Server(kind, names)
        return self.server

    async def unreachable(self) -> str | None:
        """Why the endpoint no longer answers, or None while it does."""
        try:
            await self._models(timeout=PROBE_TIMEOUT_S)
        except EndpointError as exc:
            return str(exc)
        return None

    def _body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model, "messages": request.messages, "max_tokens": self.max_tokens,
            "temperature": 0.0, "stream": True, "stream_options": {"include_usage": True},
        }
        if request.tools:
            body["tools"] = request.tools
        if self.server.kind == VLLM:
            body["extra_body"] = {"ignore_eos": True}
        return body

    async def send(self, request: Request) -> Sample:
        sample = Sample(request.id, request.kind, start=time.perf_counter())
        first_is_role = self.server.kind == VLLM
        last: float | None = None
        try:
            async with asyncio.timeout(self.timeout):
                stream = await self._client.chat.completions.create(**self._body(request))
                async with stream:
                    async for chunk in stream:
                        now = time.perf_counter()
                        if chunk.usage is not None:
                            sample.prompt_tokens = chunk.usage.prompt_tokens
                            sample.output_tokens = chunk.usage.completion_tokens
                        if not chunk.choices:
                            continue
                        choice = chunk.choices[0]
                        sample.finish_reason = choice.finish_reason or sample.finish_reason
                        if last is None and not (first_is_role or _carries_output(choice.delta)):
                            continue
                        if last is None:
                            sample.ttft = now - sample.start
                        elif _carries_output(choice.delta) or first_is_role:
                            sample.itl.append(now - last)
                        last = now
        except TimeoutError:
            sample.error = f"timed out after {self.timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - whatever ends a request, it is counted as a failure
            sample.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        sample.end = time.perf_counter()
        if sample.error is None and sample.output_tokens is None:
            sample.error = "the stream ended without its usage (no token count from the server)"
        return sample

    async def level(self, requests: list[Request], concurrency: int) -> tuple[list[Sample], float]:
        """Send `requests` keeping `concurrency` in flight (a closed loop, as `vllm bench serve
        --max-concurrency` with no request rate); returns the samples in request order and the
        seconds from the first request sent to the last one finished."""
        samples: list[Sample | None] = [None] * len(requests)
        pending = iter(enumerate(requests))

        async def worker() -> None:
            for index, request in pending:
                samples[index] = await self.send(request)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(requests)))))
        duration = time.perf_counter() - start
        return [s for s in samples if s is not None], duration
