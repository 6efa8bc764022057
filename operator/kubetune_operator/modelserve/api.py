"""The ModelServe API (`kubetune.io/v1alpha1`): typed pydantic models, the single source of its CRD schema.

A ModelServe serves one model with vLLM (OpenAI-compatible API, tool calls through the `hermes` parser):
a FineTuneRun's model (its final merged model or a named stage's, or a stage's LoRA adapter on its base
model), a complete model directory in the object store, or a Hub id. Each change of the model or of how
vLLM runs it is a new *revision*; a revision rolls out beside the one serving, traffic moves when it is
Ready and, with `promotion` set, only when its evaluation beats the serving model's.

    serve = RESOURCE.load_manifest("manifests/examples/qwen2.5-3b-serve.yaml")   # -> ModelServe
    serve.spec.model.fine_tune_run.name                           # "qwen2.5-3b-function-calling"
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, model_validator

from kubetune_jobs.contract import suites
from kubetune_jobs.contract.records import ADAPTER_NAME, Fraction

from ..apitypes import (
    API_VERSION,
    DNS_1035_LABEL,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    GROUP,
    HUB_ID,
    IMAGE,
    QUANTITY,
    S3_URI,
    SECRET_KEY,
    VERSION,
    Condition,
    Labels,
    ObjectMeta,
    ResourceKind,
    SpecError,
    StorageSpec,
    Toleration,
    described,
    syntax,
)
from ..apitypes import Model as _Model

__all__ = ["API_VERSION", "GROUP", "VERSION", "SpecError", "StorageSpec", "Toleration", "Condition"]

KIND = "ModelServe"
PLURAL = "modelserves"
SINGULAR = "modelserve"
SHORT_NAMES = ["ms"]
DEFAULT_PROMOTION_SUITES = ("seed-tools",)
# What clients send as `model`: also vLLM's --served-model-name, a --lora-modules name and a PromQL label value.
SERVED_NAME = syntax(r"^[A-Za-z0-9][-A-Za-z0-9._]*(/[A-Za-z0-9][-A-Za-z0-9._]*)*$",
                     "a model name: letters, digits, '-', '_' and '.' in '/'-separated parts, each starting with "
                     "a letter or digit")
# One argv item of vLLM: printable, no control characters (a newline would split it in logs and YAML).
ARG = syntax(r"^[^\x00-\x1f\x7f]*$", "one command-line item without control characters")
_f = described


# ---------------------------------------------------------------- spec

class FineTuneRunRef(_Model):
    """A FineTuneRun in the same namespace whose model is served once the run has succeeded."""

    name: str = _f(..., "Name of the FineTuneRun.", max_length=63, pattern=DNS_LABEL)
    stage: str | None = _f(None, "Serve this stage's model instead of the run's final one.", max_length=20,
                           pattern=DNS_LABEL)


class LoraServing(_Model):
    """vLLM's LoRA settings: serve a stage's LoRA adapter on the model that stage trained from instead of its
    merged model (`enabled`), and the limits of the adapters of spec.adapters."""

    enabled: bool = _f(False, "Serve the adapter (spec.model.fineTuneRun only).")
    max_rank: int = _f(64, "vLLM's --max-lora-rank: at least every served adapter's rank (an adapter of a "
                       "higher rank is marked failed, alone).", ge=1, le=512)
    max_loras: int = _f(4, "vLLM's --max-loras with spec.adapters: adapters one batch can mix (more can be "
                        "loaded; they take turns).", ge=1, le=256)


class ModelSource(_Model):
    """Exactly one of fineTuneRun, uri and hub."""

    fine_tune_run: FineTuneRunRef | None = _f(None, "A FineTuneRun's model (waits for the run to succeed).")
    uri: str | None = _f(None, "s3:// URI of a complete model directory (written with a _COMPLETE marker).",
                         max_length=512, pattern=S3_URI)
    hub: str | None = _f(None, "A Hugging Face Hub model id (downloaded by vLLM; token from hubTokenSecret).",
                         max_length=256, pattern=HUB_ID)
    lora: LoraServing = _f(LoraServing(), "Serve a LoRA adapter on its base model.")

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSource:
        given = [n for n in ("fine_tune_run", "uri", "hub") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("name exactly one of fineTuneRun, uri and hub"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.lora.enabled and self.fine_tune_run is None:
            raise ValueError("lora.enabled serves a FineTuneRun stage's adapter: it needs fineTuneRun")
        return self


class AdapterSpec(_Model):
    """A LoRA adapter served on the base model under its own name (what clients send as `model`): exactly one
    of fineTuneRun and uri. It must have been trained on the model spec.model serves."""

    name: str = _f(..., "The model name clients send for this adapter; also its name in status and metrics.",
                   max_length=63, pattern=syntax(ADAPTER_NAME, "lower-case letters, digits, '-' and '.', starting "
                                                 "and ending with a letter or digit"))
    fine_tune_run: FineTuneRunRef | None = _f(None, "A FineTuneRun stage's adapter (its last stage's unless stage "
                                              "is set); waits for the run to succeed.")
    uri: str | None = _f(None, "s3:// URI of a complete adapter directory (written with a _COMPLETE marker).",
                         max_length=512, pattern=S3_URI)

    @model_validator(mode="after")
    def _exactly_one(self) -> AdapterSpec:
        if (self.fine_tune_run is None) == (self.uri is None):
            raise ValueError("name exactly one of fineTuneRun and uri")
        return self


class VLLMSpec(_Model):
    """How vLLM runs the model (the flags of `vllm serve`)."""

    image: str | None = _f(None, "vLLM image (default: the operator's, a pinned vllm/vllm-openai release): "
                           "repository:tag or repository@sha256:digest.", max_length=512, pattern=IMAGE)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = _f("auto", "Weights and activations dtype.")
    max_model_len: int | None = _f(4096, "Longest context (prompt + output) in tokens; unset: the model's.",
                                   ge=16, le=1048576)
    gpu_memory_utilization: float = _f(0.9, "Share of each GPU's memory vLLM may use, in (0, 1].", gt=0.0, le=1.0)
    tensor_parallel_size: int | None = _f(None, "GPUs one replica spreads the model over (default: "
                                          "spec.resources.gpus); must divide the GPUs.", ge=1, le=16)
    tool_call_parser: str = _f("hermes", "vLLM tool-call parser (hermes reads Qwen's <tool_call> blocks).",
                               max_length=64)
    enable_auto_tool_choice: bool = _f(True, "Let the model decide when to call a tool (tool_choice=auto).")
    chat_template: str | None = _f(None, "Chat template text; unset: the one the model was trained with, from "
                                   "its own files.", max_length=65536)
    max_num_seqs: int | None = _f(None, "Most sequences batched at once (vLLM's default when unset).", ge=1, le=4096)
    extra_args: list[Annotated[str, Field(min_length=1, max_length=512, pattern=ARG)]] = _f(
        [], "More vLLM flags, appended as given: one argv item each (`--flag`, its value, or `--flag=value`); "
        "not the flags the operator sets or that a field above sets.", max_length=64)


class SecretKeyRef(_Model):
    """A key of a Secret in the ModelServe's namespace."""

    name: str = _f(..., "Secret name.", max_length=253, pattern=DNS_SUBDOMAIN)
    key: str = _f("api-key", "Key holding the value.", max_length=253, pattern=SECRET_KEY)


class ServeResources(_Model):
    """Compute and placement of each replica."""

    gpus: int = _f(1, "nvidia.com/gpu per replica (0: CPU only, vLLM's CPU build image).", ge=0, le=16)
    cpu: str = _f("4", "CPU request.", pattern=QUANTITY, max_length=32)
    memory: str = _f("32Gi", "Memory request and limit.", pattern=QUANTITY, max_length=32)
    shm_size: str = _f("8Gi", "Size of /dev/shm (a memory volume; vLLM's workers share tensors through it).",
                       pattern=QUANTITY, max_length=32)
    model_storage: str = _f("100Gi", "Ephemeral storage for the downloaded model.", pattern=QUANTITY, max_length=32)
    node_selector: Labels = _f({}, "Node labels replicas require.", max_length=32)
    tolerations: list[Toleration] = _f([], "Tolerations of the replicas.", max_length=32)
    priority_class_name: str | None = _f(None, "PriorityClass of the replicas.", max_length=253,
                                         pattern=DNS_SUBDOMAIN)


class AutoscalingSpec(_Model):
    """Replicas follow vLLM's queue (`vllm:num_requests_waiting`): KEDA when its CRD is installed, else an HPA
    through the custom-metrics API."""

    enabled: bool = _f(False, "Scale on waiting requests.")
    min_replicas: int = _f(1, "Fewest replicas.", ge=1, le=100)
    max_replicas: int = _f(4, "Most replicas.", ge=1, le=100)
    target_waiting_requests: int = _f(4, "Waiting requests per replica that add a replica.", ge=1, le=10000)


class BenchmarkSpec(_Model):
    """A throughput sweep (`kubetune-job bench`) after each revision becomes Ready."""

    enabled: bool = _f(True, "Benchmark each revision once it serves.")
    concurrency: list[Annotated[int, Field(ge=1, le=1024)]] = _f([1, 8], "Concurrency levels.", min_length=1,
                                                                  max_length=8)
    requests: int = _f(16, "Requests per level.", ge=1, le=10000)
    max_tokens: int = _f(64, "Output tokens per request.", ge=1, le=8192)


class PromotionSuite(_Model):
    """An evaluation suite of the promotion gate."""

    name: str = _f(..., "bfcl-<category>, seed-tools, heldout or chat.", max_length=64,
                   json_schema_extra={"enum": list(suites.KNOWN)})
    limit: int | None = _f(None, "First N items (all when unset).", ge=1)


class PromotionGate(_Model):
    """What a candidate must reach to replace the serving model."""

    min_accuracy: dict[Annotated[str, Field(max_length=64)], Annotated[float, Field(ge=0.0, le=1.0)]] = _f(
        {}, "Lowest accuracy per suite, e.g. {seed-tools: 0.4}.", max_length=32)
    min_margin: float = _f(0.0, "How much the candidate's mean accuracy over the suites must beat the serving "
                           "model's (0: at least equal).", ge=-1.0, le=1.0)
    max_false_call_rate: float | None = _f(None, "Highest tolerated false-call rate (a call made where none was "
                                           "wanted) on any suite.", ge=0.0, le=1.0)
    max_missed_call_rate: float | None = _f(None, "Highest tolerated missed-call rate (no call made where one was "
                                            "wanted) on any suite.", ge=0.0, le=1.0)
    max_regression: float | None = _f(None, "How far the candidate's accuracy may fall below the serving model's "
                                      "on any suite, and on any category inside one (a BFCL category, seed-tools' "
                                      "no_call...): 0 allows no drop at all.", ge=0.0, le=1.0)
    benchmark_concurrency: int | None = _f(None, "The spec.benchmark.concurrency level the serving objectives read "
                                           "(required with them).", ge=1, le=1024)
    max_ttft_p95_ms: float | None = _f(None, "Highest tolerated 95th-percentile time to first token, in ms, of the "
                                       "candidate's own benchmark at benchmarkConcurrency (run at full strength "
                                       "before traffic moves).", gt=0.0, le=3_600_000.0, alias="maxTTFTp95Ms")
    min_throughput_ratio: float | None = _f(None, "Lowest output tok/s of the candidate's benchmark at "
                                            "benchmarkConcurrency, as a share of the serving revision's at the same "
                                            "level (1: at least as fast).", gt=0.0, le=100.0)

    def objectives(self) -> bool:
        """Whether the gate reads benchmarks (the candidate is then benchmarked before traffic moves)."""
        return self.max_ttft_p95_ms is not None or self.min_throughput_ratio is not None


class PromotionSpec(_Model):
    """Promotion gated on evaluation: a new revision replaces the serving one only when it passes."""

    enabled: bool = _f(False, "Gate every model change on evaluation.")
    suites: list[PromotionSuite] = _f([PromotionSuite(name=s) for s in DEFAULT_PROMOTION_SUITES],
                                      "Suites both models are evaluated on.", min_length=1, max_length=16)
    gate: PromotionGate = _f(PromotionGate(), "The thresholds.")
    max_new_tokens: int = _f(256, "Longest answer per evaluation item.", ge=16, le=8192)
    readiness_timeout_seconds: int = _f(1800, "A candidate not Ready after this long is rejected.", ge=10, le=86400)
    watch_seconds: int = _f(0, "After a promotion, how long the previous revision stays up and a failing live probe "
                            "(spec.monitoring.probe) moves traffic back to it (0: no watch; needs the probe).",
                            ge=0, le=7 * 86400)
    keep_previous: int = _f(1, "Replicas the previous revision keeps during the watch.", ge=1, le=100)


class ProbeSpec(_Model):
    """The live probe: a fixed set of tool-calling and no-call requests sent to the stable endpoint on an interval
    (`kubetune-job probe`), read as a client reads the replies, exported as kubetune_probe_* metrics."""

    enabled: bool = _f(False, "Run the probe against the serving revision.")
    interval_seconds: int = _f(60, "Seconds between the starts of two rounds.", ge=10, le=86400)
    suites: list[PromotionSuite] = _f([PromotionSuite(name="seed-tools", limit=10)],
                                      "Suites whose first items are the probe set (tool-calling suites; heldout and "
                                      "chat are not probed).", max_length=8)
    data: str | None = _f(None, "s3:// URI of your own probe set, sent after the suites' items: JSONL rows in "
                          "prepare's shape (messages ending with the expected assistant turn, tools), BFCL's (id, "
                          "question, function, ground_truth) or seed-tools' (id, category, prompt, ground_truth, "
                          "tools).", max_length=1024, pattern=S3_URI)
    max_new_tokens: int = _f(128, "Longest answer per probe request.", ge=16, le=8192)
    min_accuracy: float | None = _f(None, "During the watch window, a round below this accuracy rolls back.",
                                    ge=0.0, le=1.0)
    max_unparseable_rate: float = _f(0.2, "During the watch window, a round with more of its answers' calls "
                                     "reaching the client as text (or undecodable) rolls back.", ge=0.0, le=1.0)
    max_failed_rate: float = _f(0.5, "During the watch window, a round with more of its requests unanswered rolls "
                                "back.", ge=0.0, le=1.0)


class MonitoringSpec(_Model):
    """Prometheus scraping of vLLM's /metrics, and the live probe."""

    pod_monitor: bool = _f(True, "Create a PodMonitor (when the Prometheus Operator's CRD is installed).")
    labels: Labels = _f({}, "Extra labels on the PodMonitor (e.g. the release your Prometheus selects).",
                        max_length=16)
    probe: ProbeSpec = _f(ProbeSpec(), "Live tool-call health of the serving revision.")


class ImagesSpec(_Model):
    """The jobs image (model download, benchmark, evaluation)."""

    jobs: str | None = _f(None, "Image with `kubetune-job` (default: the operator's): repository:tag or "
                          "repository@sha256:digest.", max_length=512, pattern=IMAGE)
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = _f("IfNotPresent", "Image pull policy.")


class ModelServeSpec(_Model):
    """Desired serving: one model, served by vLLM with tool calling, behind one Service."""

    model: ModelSource = _f(..., "What to serve.")
    served_model_name: str | None = _f(None, "The `model` clients name in requests (default: metadata.name).",
                                       max_length=128, pattern=SERVED_NAME)
    vllm: VLLMSpec = _f(VLLMSpec(), "vLLM settings.")
    api_key_secret: SecretKeyRef | None = _f(None, "Secret whose key becomes the API key clients must send "
                                             "(VLLM_API_KEY; by reference only).")
    replicas: int = _f(1, "Replicas (the floor when autoscaling).", ge=0, le=100)
    resources: ServeResources = _f(ServeResources(), "Compute and placement of each replica.")
    storage: StorageSpec = _f(StorageSpec(), "Object store of the model and of the benchmark/evaluation results.")
    hub_token_secret: str | None = _f(None, "Secret with key HF_TOKEN for gated Hub models.", max_length=253,
                                      pattern=DNS_SUBDOMAIN)
    autoscaling: AutoscalingSpec = _f(AutoscalingSpec(), "Scale on vLLM's queue.")
    benchmark: BenchmarkSpec = _f(BenchmarkSpec(), "Benchmark each revision.")
    promotion: PromotionSpec = _f(PromotionSpec(), "Gate model changes on evaluation.")
    monitoring: MonitoringSpec = _f(MonitoringSpec(), "Prometheus scraping.")
    images: ImagesSpec = _f(ImagesSpec(), "Helper images.")
    adapters: list[AdapterSpec] = _f(
        [], "LoRA adapters served beside the base model, each under its own name. They are loaded at run time on "
        "every replica, and a replica that starts gets the current set: adding, changing or removing one never "
        "restarts vLLM (the first one, from none, starts a revision with LoRA enabled).", max_length=64)

    @model_validator(mode="after")
    def _adapters(self) -> ModelServeSpec:
        names = [a.name for a in self.adapters]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"adapters: each name once ({', '.join(twice)} given more than once)")
        if self.adapters and self.model.lora.enabled:
            raise ValueError("adapters: serve the base model (not model.lora.enabled, which serves one adapter "
                             "as the model)")
        return self


# ---------------------------------------------------------------- status

class ServedModel(_Model):
    """A model and the revision serving it."""

    revision: str = _f(..., "Revision id (a digest of the model and the vLLM settings).")
    source: str = _f(..., "What was asked for (finetunerun/<name>[/<stage>], an s3:// URI, hub:<id>).")
    uri: str | None = _f(None, "The model directory in the object store.")
    hub: str | None = _f(None, "The Hub id vLLM loads.")
    adapter: str | None = _f(None, "LoRA mode: the adapter directory served on the model.")
    digest: str | None = _f(None, "sha256 over the completeness markers of the model (and adapter): its content.")


# A measured figure the status carries: JSON has no NaN or infinity (an API server refuses the whole write).
Measured = Annotated[FiniteFloat, Field(ge=0.0)]
SuiteName = Annotated[str, Field(max_length=64)]


class BenchmarkResult(_Model):
    """The benchmark of one revision."""

    revision: str = _f(..., "Revision benchmarked.")
    output_tokens_per_second: dict[str, Measured] = _f({}, "Output tok/s per concurrency level.", max_length=8)
    ttft_p95_seconds: dict[str, Measured] = _f({}, "95th-percentile time to first token per level.", max_length=8)
    failed: int = _f(0, "Requests that failed over the sweep.")
    report: str | None = _f(None, "URI of bench.json.")

    def levels(self) -> dict[str, Any]:
        """The figures as bench.json holds them: the gate reads a recorded benchmark as it reads bench.json."""
        ttft = self.ttft_p95_seconds
        return {"complete": True, "levels": [
            {"concurrency": int(c), "output_throughput": v, "ttft_p95_s": ttft.get(c)}
            for c, v in self.output_tokens_per_second.items() if c.isdigit()]}


class HistoryEntry(_Model):
    """One decision about a revision."""

    time: str = _f(..., "When (RFC 3339).")
    revision: str = _f(..., "The revision decided on.")
    decision: Literal["RolledOut", "Promoted", "Rejected", "RolledBack"] = _f(..., "What happened.")
    reason: str = _f(..., "CamelCase reason.", max_length=128)
    message: str = _f("", "Detail, with the figures side by side.", max_length=2048)
    digest: str | None = _f(None, "The model's digest.")


class GateFigures(_Model):
    """The figures of one suite (or one category inside it) that the promotion gate reads."""

    # The same model reads them from an evaluation's report.json (snake_case keys, the report's other figures
    # ignored) and from this status (camelCase): a recorded evaluation is read as a report is.
    model_config = ConfigDict(extra="ignore")
    accuracy: Fraction | None = _f(None, "Share of the items passed (unscored items count as failed).")
    false_call_rate: Fraction | None = _f(None, "Share of the no-call items answered with a call (unset: there is "
                                          "no such item).")
    missed_call_rate: Fraction | None = _f(None, "Share of the call items answered without one (unset: there is "
                                           "no such item).")


class SuiteFigures(GateFigures):
    """A gated suite's figures, and its categories' (what maxRegression reads)."""

    categories: dict[Annotated[str, Field(max_length=64)], GateFigures] = _f(
        {}, "Figures per category (a BFCL category, seed-tools' multiple / no_call / parallel_multiple...).",
        max_length=32)


class Evaluation(_Model):
    """One revision's evaluation on the promotion suites, as the gate read it."""

    revision: str = _f(..., "The revision evaluated.", max_length=64)
    suites_digest: str = _f(..., "Digest of the suites, their item limits and the answer length: the figures "
                            "are reused only for the same.", max_length=16)
    complete: bool = _f(..., "Every item got an answer.")
    suites: dict[SuiteName, SuiteFigures] = _f({}, "Figures per suite.", max_length=16)

    def report(self) -> dict[str, Any]:
        """The figures as report.json holds them: the gate reads a recorded evaluation as it reads a report."""
        return {"complete": self.complete, "suites": {s: f.model_dump() for s, f in self.suites.items()}}


EVALUATIONS_KEPT = 4


class CandidateStatus(_Model):
    """A revision being rolled out or evaluated beside the serving one."""

    revision: str = _f(..., "The candidate revision.")
    started: str = _f(..., "When it was created (RFC 3339); the readiness timeout counts from here.")
    phase: str = _f("RollingOut", "RollingOut, Evaluating, ScalingUp (passed the evaluation), Benchmarking "
                    "(at full strength, for the serving objectives).")
    message: str | None = _f(None, "The gate's figures, once it passed.", max_length=2048)


class ProbeStatus(_Model):
    """The live probe's last round of the serving revision (its probe.json)."""

    revision: str = _f(..., "The revision probed.")
    time: str = _f(..., "When the round ended (RFC 3339, as the probe wrote it).", max_length=64)
    rounds: int = _f(..., "Rounds the prober has run.", ge=1)
    accuracy: Fraction = _f(..., "Share of the probe's requests answered correctly.")
    unparseable: Fraction | None = _f(None, "Share of answers whose calls reached the client as text.")
    failed: Fraction = _f(..., "Share of the probe's requests unanswered.")
    call: Fraction | None = _f(None, "Share of call requests answered with a call.")
    no_call: Fraction | None = _f(None, "Share of no-call requests answered without one.")


class WatchStatus(_Model):
    """A promotion under watch: the previous revision stays up until `until`, and a failing probe rolls back."""

    revision: str = _f(..., "The promoted revision under watch.")
    previous: ServedModel = _f(..., "What served before, kept up to take traffic back.")
    since: str = _f(..., "When the promotion happened (RFC 3339).")
    until: str = _f(..., "When the watch ends and the previous revision is removed (RFC 3339).")


AdapterState = Literal["Waiting", "Loading", "Ready", "Failed"]


class AdapterStatus(_Model):
    """One adapter of spec.adapters: where its files are, and which Ready replicas of the serving revision
    answer for it."""

    name: str = _f(..., "The adapter's name (what clients send as `model`).", max_length=63)
    source: str = _f(..., "What spec.adapters names (finetunerun/<name>[/<stage>] or the s3:// URI).", max_length=600)
    uri: str | None = _f(None, "The adapter directory in the object store.", max_length=1024)
    digest: str | None = _f(None, "sha256 over its completeness marker: its content.", max_length=64)
    state: AdapterState = _f(..., "Waiting (for its run or files), Loading (not yet on every Ready replica), Ready "
                             "(on every one), Failed (the message says why; the replicas retry it).")
    message: str | None = _f(None, "Why it waits or failed, naming the field or the replica.", max_length=2048)
    replicas: list[Annotated[str, Field(max_length=253)]] = _f(
        [], "Ready replicas (pods) of the serving revision that answer for it.", max_length=100)


class ModelServeStatus(_Model):
    """Observed state, written by the operator."""

    endpoint: str | None = _f(None, "In-cluster OpenAI-compatible base URL (…/v1).")
    model: ServedModel | None = _f(None, "The model serving now.")
    candidate: CandidateStatus | None = _f(None, "A revision rolling out or under evaluation.")
    ready_replicas: int = _f(0, "Replicas of the serving revision that are Ready.")
    ready: str | None = _f(None, "readyReplicas/replicas (printer column).")
    tokens_per_second: Measured | None = _f(None, "Best output tok/s of the serving revision's benchmark.")
    benchmark: BenchmarkResult | None = _f(None, "The serving revision's benchmark.")
    evaluations: list[Evaluation] = _f([], "What the gate read of the serving and the candidate revision's "
                                       "evaluations (the serving one's is reused while the suites stay the same).",
                                       max_length=EVALUATIONS_KEPT)
    probe: ProbeStatus | None = _f(None, "The live probe's last round of the serving revision.")
    watch: WatchStatus | None = _f(None, "The promotion under watch, while its window lasts.")
    adapters: list[AdapterStatus] = _f([], "Each adapter of spec.adapters.", max_length=64)
    adapters_ready: str | None = _f(None, "Adapters Ready on every Ready replica / adapters (printer column).",
                                    max_length=16)
    rejected: list[str] = _f([], "Revisions the gate rejected or the watch rolled back (not retried until the model "
                             "changes).", max_length=32)
    history: list[HistoryEntry] = _f([], "Rollouts, promotions and rejections, newest last.", max_length=50)
    conditions: list[Condition] = _f([], "Ready, Progressing, Degraded.", max_length=16)
    observed_generation: int | None = _f(None, "metadata.generation last reconciled.")


class ServeMeta(ObjectMeta):
    """A ModelServe's metadata: its name is also its Service's, and a Service's name starts with a letter."""

    name: str = Field(..., max_length=63, pattern=DNS_1035_LABEL)


class ModelServe(BaseModel):
    """A ModelServe manifest (what `kubectl apply` and `kubetune serve` read)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    api_version: Literal["kubetune.io/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["ModelServe"] = KIND
    metadata: ServeMeta
    spec: ModelServeSpec
    status: ModelServeStatus | None = None

    def served_name(self) -> str:
        return self.spec.served_model_name or self.metadata.name


def _rules(schema: dict[str, Any]) -> None:
    """CEL: the model names one source; the autoscaler's bounds are ordered."""
    schema["properties"]["model"]["x-kubernetes-validations"] = [
        {"rule": "[has(self.fineTuneRun), has(self.uri), has(self.hub)].filter(x, x).size() == 1",
         "message": "name exactly one of fineTuneRun, uri and hub"},
    ]
    schema["properties"]["adapters"]["x-kubernetes-validations"] = [
        {"rule": "self.all(a, self.exists_one(b, b.name == a.name))", "message": "adapter names must be unique"},
    ]
    schema["properties"]["adapters"]["items"]["x-kubernetes-validations"] = [
        {"rule": "has(self.fineTuneRun) != has(self.uri)", "message": "name exactly one of fineTuneRun and uri"},
    ]
    schema["properties"]["autoscaling"]["x-kubernetes-validations"] = [
        {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
    ]


RESOURCE = ResourceKind(
    kind=KIND, plural=PLURAL, singular=SINGULAR, short_names=tuple(SHORT_NAMES), spec=ModelServeSpec,
    status=ModelServeStatus, manifest=ModelServe, spec_rules=_rules,
    printer_columns=(
        {"name": "Model", "type": "string", "jsonPath": ".status.model.source"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
        {"name": "Tok/s", "type": "number", "jsonPath": ".status.tokensPerSecond"},
        {"name": "Adapters", "type": "string", "jsonPath": ".status.adaptersReady", "description":
         "Adapters answering on every Ready replica / adapters named"},
        {"name": "Probe", "type": "number", "jsonPath": ".status.probe.accuracy", "description":
         "The live probe's last accuracy on the serving revision"},
        {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ),
)
