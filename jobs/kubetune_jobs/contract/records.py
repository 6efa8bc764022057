"""The records the jobs write and the operator (and `kubetune run`) read, typed on both sides.

    progress.json   `Progress`       written by train on every logged step; by evaluate as items are answered
                                     (step: items done, total: items)
    curve.json      `TrainingCurve`  written by train beside it: the figures of every logged step
    stats.json      `PrepareStats`   written last by prepare (what it vouches for)
    report.json     `ReportSummary`  the figures of the report evaluate writes (items are the job's own)
    bench.json      `BenchReport`    written by bench after every concurrency level (complete at the end)
    probe.json      `ProbeReport`    written by probe after every round (the last round)
    adapters.json   `AdapterSet`     written by the operator (and `kubetune serve`): the adapters every replica serves
    adapters/<replica>.json  `ReplicaAdapters`  written by a replica's adapter agent after every pass

Writers build the record and dump it; readers validate it with `read()`, which returns None for
anything that is not such a record (a missing key of the wrong type, a file of another kind), so no
reader guesses at alternative keys. Keys a newer job adds are ignored by an older reader.

What a reader gets comes from a store, so each kind declares `max_bytes`, the most a reader takes
(`locations.read_record` reads one byte more and refuses the object unparsed when it is there), and
figures that JSON cannot carry (NaN, infinities) are refused where they are `FiniteFloat` (a bench.json
holding one is not a BenchReport); elsewhere whoever puts a figure in a status drops a non-finite one.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    Strict,
    ValidationError,
    field_validator,
)

R = TypeVar("R", bound=BaseModel)

# The states train writes; a reader takes any string, so a newer job's new state does not hide its figures.
PROGRESS_STATES = ("starting", "running", "exporting", "succeeded", "preempted", "failed")
KIB, MIB = 2**10, 2**20

# An accuracy or a rate where a decision rests on it (the promotion gate, a status an API server stores): a
# JSON number, never a boolean or a numeric string, finite (NaN and infinities are not JSON), within [0, 1].
Fraction = Annotated[float, Strict(), AllowInfNan(False), Field(ge=0.0, le=1.0)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")
    max_bytes: ClassVar[int]  # the most of the file a reader reads

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Progress(_Record):
    """One training stage's state (`stages/<stage>/progress.json`)."""

    max_bytes: ClassVar[int] = 64 * KIB  # a few hundred bytes of figures and one line of error

    state: str = "starting"  # one of PROGRESS_STATES
    step: int = 0  # optimizer steps done
    total: int | None = None  # optimizer steps planned
    loss: float | None = None
    learning_rate: float | None = None
    tokens_per_second: float | None = None  # non-padding tokens of all ranks, from the end of the first step
    items_per_second: float | None = None  # evaluate: items answered per second so far
    tokens: int | None = None  # non-padding tokens trained on in this stage, every rank's (num_input_tokens_seen)
    eta_seconds: float | None = None
    epoch: float | None = None
    start_step: int | None = None  # the step this process resumed from
    eval_loss: float | None = None
    eval_loss_start: float | None = None  # before any training
    checkpoint: str | None = None  # URI of the newest complete checkpoint
    error: str | None = None  # first line of what stopped a failed stage
    updated_at: float | None = None  # unix time of the last write
    gpu_memory_peak_gib: float | None = None
    precision: str | None = None  # bf16 | fp16 | fp32, as trained
    precision_reason: str | None = None  # why, when it was chosen automatically
    fingerprint: str | None = None  # the step fingerprint it was run with (see options.FINGERPRINT_HELP)
    world_size: int | None = None  # ranks training together (torchrun's WORLD_SIZE; 1 without torchrun)
    batch_size: int | None = None  # rows per rank per micro-batch
    grad_accum: int | None = None  # micro-batches each rank accumulates per optimizer step
    effective_batch: int | None = None  # rows per optimizer step: batch_size × grad_accum × world_size
    distribution: str | None = None  # ddp | fsdp (with world_size > 1)


class CurvePoint(_Record):
    """The figures train logged at one optimizer step (step 0: the evaluation before any training)."""

    step: int
    loss: float | None = None
    eval_loss: float | None = None
    learning_rate: float | None = None
    tokens_per_second: float | None = None


class TrainingCurve(_Record):
    """One training stage's figures over its steps (`stages/<stage>/curve.json`), for the run report."""

    max_bytes: ClassVar[int] = 4 * MIB  # ~100 bytes per logged step: 40,000 of them
    points: list[CurvePoint] = []


class PrepareStats(_Record):
    """What `prepare` vouches for (`data/<stage>/stats.json`); the job's other statistics ride along."""

    model_config = ConfigDict(extra="allow")
    max_bytes: ClassVar[int] = MIB  # counts per reason and per kind: a few KiB
    content_hash: str = Field(min_length=1)  # sha256 over train.jsonl + eval.jsonl
    files: dict[str, str]  # file name -> sha256
    fingerprint: str | None = None  # prepare's own: flags and source content
    step_fingerprint: str | None = None  # the operator's step fingerprint


class SuiteFigures(_Record):
    """A suite's (or one category's) aggregates in report.json."""

    items: int = 0
    scored: int = 0
    passed: int | None = None
    accuracy: float | None = None
    name_accuracy: float | None = None
    false_call_rate: float | None = None
    missed_call_rate: float | None = None
    unparseable_rate: float | None = None
    schema_violation_rate: float | None = None
    loss: float | None = None
    perplexity: float | None = None
    win_rate: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None


class Suite(SuiteFigures):
    categories: dict[str, SuiteFigures] = {}


class ReportSummary(_Record):
    """The figures of an evaluation report (`eval/<label>/report.json`)."""

    # The file holds every item scored (~600 bytes each, an answer's raw text included): 16 MiB is ~25,000
    # items, seven times the 3,466 of all the BFCL categories in `suites` together.
    max_bytes: ClassVar[int] = 16 * MIB

    complete: bool  # every item got an answer
    suites: dict[str, Suite] = {}
    model: str | None = None
    target: str | None = None
    precision: str | None = None  # the generation dtype of a local model
    precision_reason: str | None = None
    fingerprint: str | None = None


class BenchLevel(_Record):
    """One concurrency level of `bench.json` (latencies in seconds)."""

    concurrency: int
    completed: int
    failed: int
    duration_s: FiniteFloat
    request_throughput: FiniteFloat  # completed requests / s
    output_tokens: int
    output_throughput: FiniteFloat  # output tokens / s
    total_token_throughput: FiniteFloat | None = None  # (prompt + output) tokens / s
    ttft_mean_s: FiniteFloat | None = None
    ttft_p50_s: FiniteFloat | None = None
    ttft_p95_s: FiniteFloat | None = None
    ttft_p99_s: FiniteFloat | None = None
    tpot_mean_s: FiniteFloat | None = None
    tpot_p50_s: FiniteFloat | None = None
    tpot_p95_s: FiniteFloat | None = None
    tpot_p99_s: FiniteFloat | None = None
    itl_mean_s: FiniteFloat | None = None
    itl_p50_s: FiniteFloat | None = None
    itl_p95_s: FiniteFloat | None = None
    itl_p99_s: FiniteFloat | None = None
    e2e_mean_s: FiniteFloat | None = None
    e2e_p50_s: FiniteFloat | None = None
    e2e_p95_s: FiniteFloat | None = None
    e2e_p99_s: FiniteFloat | None = None
    # The server's own counts over the level (vLLM's /metrics deltas), None where it has none.
    server_completed: int | None = None  # vllm:request_success_total, finished_reason not abort/error
    server_output_tokens: int | None = None  # vllm:generation_tokens_total
    errors: dict[str, int] = {}  # why requests failed -> how many


class BenchReport(_Record):
    """What `kubetune-job bench` writes (`bench.json`)."""

    max_bytes: ClassVar[int] = MIB  # ~1.5 KiB per level, and each distinct failure once with its count

    complete: bool  # every level ran (a partial sweep is written too, marked incomplete)
    endpoint: str
    model: str
    max_tokens: int
    server: str | None = None  # "vllm" (fixed output length via ignore_eos) or "openai" (any other server)
    levels: list[BenchLevel] = []
    warmup: dict[str, Any] | None = None
    error: str | None = None  # what stopped an incomplete sweep
    notes: list[str] = []  # what the sweep went on despite (the server's counters unusable, ...)
    fingerprint: str | None = None


class ProbeHealth(_Record):
    """One round of the live probe: what a client of the endpoint got. A share is None where no request of its
    kind was sent or answered (nothing measured is not a reassuring 0)."""

    max_bytes: ClassVar[int] = 64 * KIB

    items: int = Field(ge=1)
    answered: int = Field(ge=0)
    accuracy: Fraction  # a request without an answer counts wrong
    failed: Fraction  # share of requests without an answer
    unparseable: Fraction | None = None  # calls that reached the client as text (or undecodable)
    schema_violation: Fraction | None = None  # calling answers with arguments outside the offered schema
    call: Fraction | None = None  # requests that need a call, answered with one
    no_call: Fraction | None = None  # requests that need none, answered without any
    latency_p50_s: FiniteFloat | None = None
    latency_p95_s: FiniteFloat | None = None
    unanswered_because: str | None = None  # the first unanswered request's reason


class ProbeReport(_Record):
    """What `kubetune-job probe` writes after every round (`probe.json`, rewritten each round)."""

    max_bytes: ClassVar[int] = 256 * KIB  # a few hundred bytes of figures and ~200 per item

    created: str  # RFC 3339, when the round ended
    model: str
    revision: str | None = None
    rounds: int = Field(ge=1)  # rounds this prober has run (the last one is this)
    health: ProbeHealth
    items: list[dict[str, Any]] = []


# An adapter's name is what clients send as `model`, a vLLM LoRA name and a PromQL label value.
ADAPTER_NAME = r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$"
SHA256 = r"^[0-9a-f]{64}$"
# States an adapter reaches on one replica.
LOADED, FAILED = "Loaded", "Failed"


class Wanted(_Record):
    """One adapter of the set."""

    max_bytes: ClassVar[int] = 4 * KIB

    name: str = Field(pattern=ADAPTER_NAME)
    uri: str = Field(min_length=1, max_length=1024)  # a complete adapter directory: path or s3://
    digest: str = Field(pattern=SHA256)  # marker_digest of its _COMPLETE marker

    @field_validator("uri")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise ValueError("a URI without control characters")
        return value


class AdapterSet(_Record):
    """`adapters.json`: what every replica of a serve answers for besides its base model."""

    max_bytes: ClassVar[int] = 1 * MIB

    base: str = Field(min_length=1, max_length=253)  # the base's served name (vLLM's --served-model-name)
    max_rank: int = Field(ge=1, le=512)  # the server's --max-lora-rank
    adapters: list[Wanted] = Field(default=[], max_length=256)

    @field_validator("adapters")
    @classmethod
    def _unique(cls, value: list[Wanted]) -> list[Wanted]:
        names = [w.name for w in value]
        if len(set(names)) != len(names):
            raise ValueError("each adapter name once")
        return value


class AdapterState(_Record):
    """One adapter on one replica."""

    max_bytes: ClassVar[int] = 8 * KIB

    name: str
    digest: str
    state: str  # LOADED | FAILED
    reason: str | None = None  # why it failed: a check's message or the server's


class ReplicaAdapters(_Record):
    """What one replica's agent reached in its last pass (`adapters/<replica>.json`)."""

    max_bytes: ClassVar[int] = 1 * MIB

    created: str  # RFC 3339, when the pass ended
    replica: str  # the pod's name (the agent's host name)
    adapters: list[AdapterState] = []
    removed: list[str] = []  # adapters the pass unloaded because the set no longer names them


def read(record: type[R], data: bytes | str | dict[str, Any] | None) -> R | None:
    """`data` (raw JSON or a parsed object) as `record`, or None when it is not one.

    Raw JSON is validated as it is parsed: keys the record does not name (a report's items) never become
    Python objects, and nesting too deep to parse is an invalid record, not a RecursionError."""
    if data is None:
        return None
    try:
        if isinstance(data, bytes | str):
            return record.model_validate_json(data)
        return record.model_validate(data)
    except (ValueError, ValidationError, TypeError):
        return None
