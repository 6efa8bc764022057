"""Every kubetune_* metric (name, type, help, labels) and the Pushgateway groups the jobs push them under.

The one home of these names. The operator serves its own on /metrics (`kubetune_operator.metrics`); the
jobs push theirs (`train.metrics`, `evaluate.metrics`, `bench.metrics`), and the operator deletes a run's
or a serve's pushed groups when it is deleted, which is why the groups live here too. The dashboard
(charts/kubetune/dashboards/) and the alerts (charts/kubetune/alerts/) query these names; the tests hold
both to this module. vLLM's own metrics the platform reads are named at the end.

Prometheus conventions: base units (`_seconds`), shares in [0, 1] end in `_ratio`, counters end in
`_total` (so `rate()` gives tokens or requests per second), a timestamp is `_timestamp_seconds`.

Pushed groups carry the namespace of their run or serve, so two runs of one name in two namespaces keep
apart; Prometheus scrapes the gateway with `honor_labels` so the pushed labels (`job`, `namespace`,
`run`, ...) are the ones the series keep. Jobs run by hand (no `--namespace`) push without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class Metric:
    """One metric family. `name` is the name series carry (a counter's ends in `_total`)."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if (self.kind == "counter") != self.name.endswith("_total"):
            raise ValueError(f"{self.name}: only counters end in _total, and every counter does")

    def create(self, registry: CollectorRegistry | None = REGISTRY) -> Any:
        """The prometheus_client metric, registered in `registry` (None: unregistered)."""
        if self.kind == "counter":
            return Counter(self.name.removesuffix("_total"), self.help, self.labels, registry=registry)
        if self.kind == "gauge":
            return Gauge(self.name, self.help, self.labels, registry=registry)
        return Histogram(self.name, self.help, self.labels, registry=registry, buckets=self.buckets or Histogram.DEFAULT_BUCKETS)

    @property
    def series(self) -> tuple[str, ...]:
        """The sample names Prometheus stores for this family."""
        if self.kind == "histogram":
            return tuple(f"{self.name}_{s}" for s in ("bucket", "sum", "count"))
        return (self.name,)


# ---------------------------------------------------------------- the operator (its /metrics)

NS, RUN, SERVE, MODEL_NAME = "namespace", "run", "modelserve", "model_name"
STEP_BUCKETS = (10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 57600, 115200)
WAIT_BUCKETS = (1, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400)

RUN_PHASE = Metric("kubetune_operator_run_phase", "gauge",
                   "1 for the FineTuneRun's current phase, 0 for the other phases", (NS, RUN, "phase"))
RUN_FAILURES = Metric("kubetune_operator_run_failures_total", "counter",
                      "FineTuneRuns that ended Failed, by the reason of their Succeeded condition", (NS, "reason"))
RUN_PROGRESS = Metric("kubetune_operator_run_last_progress_timestamp_seconds", "gauge",
                      "Unix time the operator last saw the FineTuneRun move (a step done, a training step "
                      "logged); the operator's start when it has seen none since", (NS, RUN))
RUN_EVAL_ACCURACY = Metric("kubetune_operator_run_eval_accuracy_ratio", "gauge",
                           "Accuracy of the FineTuneRun's latest evaluated model, per suite (from its status)",
                           (NS, RUN, "suite"))
STEP_DURATION = Metric("kubetune_operator_step_duration_seconds", "histogram",
                       "Wall time of finished plan steps (Job start to completion)", (NS, "kind"), STEP_BUCKETS)
STEP_QUEUE_WAIT = Metric("kubetune_operator_step_queue_wait_seconds", "histogram",
                         "Time finished plan steps waited between their Job's creation and its start (queueing, "
                         "Kueue admission)", (NS, "kind"), WAIT_BUCKETS)
JOBS_CREATED = Metric("kubetune_operator_jobs_created_total", "counter", "Jobs created for plan steps",
                      (NS, "kind"))
RECONCILE_ERRORS = Metric("kubetune_operator_reconcile_errors_total", "counter",
                          "Reconciles that raised, by resource kind and error", (NS, "resource", "reason"))
SERVE_READY = Metric("kubetune_operator_modelserve_ready", "gauge",
                     "1 when the ModelServe's Ready condition is True, else 0", (NS, SERVE, MODEL_NAME))
SERVE_READY_REPLICAS = Metric("kubetune_operator_modelserve_ready_replicas", "gauge",
                              "Ready replicas of the ModelServe's serving revision", (NS, SERVE, MODEL_NAME))
SERVE_DECISIONS = Metric("kubetune_operator_modelserve_decisions_total", "counter",
                         "Rollouts, promotions and rejections of ModelServe revisions",
                         (NS, SERVE, MODEL_NAME, "decision", "reason"))
SERVE_ADAPTER_READY = Metric("kubetune_operator_modelserve_adapter_ready", "gauge",
                             "1 when the adapter answers on every Ready replica of the serving revision, else 0",
                             (NS, SERVE, "adapter"))
SERVE_ADAPTER_REPLICAS = Metric("kubetune_operator_modelserve_adapter_replicas", "gauge",
                                "Ready replicas of the serving revision that answer for the adapter",
                                (NS, SERVE, "adapter"))

OPERATOR = (RUN_PHASE, RUN_FAILURES, RUN_PROGRESS, RUN_EVAL_ACCURACY, STEP_DURATION, STEP_QUEUE_WAIT,
            JOBS_CREATED, RECONCILE_ERRORS, SERVE_READY, SERVE_READY_REPLICAS, SERVE_DECISIONS, SERVE_ADAPTER_READY,
            SERVE_ADAPTER_REPLICAS)
RUN_PHASES = ("Pending", "Running", "Succeeded", "Failed")
STEP_KINDS = ("prepare", "train", "evaluate")
# Every (decision, reason) a ModelServe's history records: their counters start at 0 so that the first
# rejection is an increase Prometheus sees.
SERVE_OUTCOMES = (("RolledOut", "RolledOut"), ("Promoted", "Promoted"), ("Rejected", "PromotionRejected"),
                  ("Rejected", "EvaluationFailed"), ("Rejected", "CandidateNotReady"),
                  ("Rejected", "BenchmarkFailed"), ("RolledBack", "ProbeFailed"), ("RolledBack", "ProbeMissing"))
REJECTED = "Rejected"

# ---------------------------------------------------------------- the jobs (pushed to a Pushgateway)

TRAIN_STEP = Metric("kubetune_train_step", "gauge", "Optimizer steps done in this stage")
TRAIN_PLANNED_STEPS = Metric("kubetune_train_planned_steps", "gauge", "Optimizer steps planned for this stage")
TRAIN_LOSS = Metric("kubetune_train_loss", "gauge", "Training loss at the last logged step")
TRAIN_EVAL_LOSS = Metric("kubetune_train_eval_loss", "gauge", "Loss on the held-out split at the last evaluation")
TRAIN_LEARNING_RATE = Metric("kubetune_train_learning_rate", "gauge", "Learning rate at the last logged step")
TRAIN_TOKENS = Metric("kubetune_train_tokens_total", "counter",
                      "Non-padding tokens trained on in this stage (rate() gives the training throughput)")
TRAIN = (TRAIN_STEP, TRAIN_PLANNED_STEPS, TRAIN_LOSS, TRAIN_EVAL_LOSS, TRAIN_LEARNING_RATE, TRAIN_TOKENS)

EVAL_LABELS = ("suite", "category")  # category "all": the whole suite
EVAL_ACCURACY = Metric("kubetune_eval_accuracy_ratio", "gauge",
                       "Share of items answered correctly (BFCL AST rules)", EVAL_LABELS)
EVAL_NAME_ACCURACY = Metric("kubetune_eval_function_name_accuracy_ratio", "gauge",
                            "Share of call items with the right function names", EVAL_LABELS)
EVAL_FALSE_CALL = Metric("kubetune_eval_false_call_ratio", "gauge",
                         "Share of no-call items where the model called a function", EVAL_LABELS)
EVAL_MISSED_CALL = Metric("kubetune_eval_missed_call_ratio", "gauge",
                          "Share of call items where the model called nothing", EVAL_LABELS)
EVAL_UNPARSEABLE = Metric("kubetune_eval_unparseable_ratio", "gauge",
                          "Share of items whose call markup did not decode", EVAL_LABELS)
EVAL_SCHEMA_VIOLATION = Metric("kubetune_eval_schema_violation_ratio", "gauge",
                               "Share of calling items with arguments outside the schema", EVAL_LABELS)
EVAL_LATENCY = Metric("kubetune_eval_answer_latency_seconds", "gauge", "Answer latency, by statistic (p50, p95)",
                      (*EVAL_LABELS, "statistic"))
EVAL_CHAT_LOSS = Metric("kubetune_eval_chat_loss", "gauge", "Mean per-token loss on held-out assistant turns",
                        EVAL_LABELS)
EVAL_CHAT_PERPLEXITY = Metric("kubetune_eval_chat_perplexity", "gauge", "Perplexity on held-out assistant turns",
                              EVAL_LABELS)
EVAL_JUDGE_WIN = Metric("kubetune_eval_judge_win_ratio", "gauge",
                        "Pairwise judge win rate against the reference answers", EVAL_LABELS)
EVAL_ITEMS = Metric("kubetune_eval_items", "gauge", "Items in the suite (or category)", EVAL_LABELS)
EVAL_COMPLETE = Metric("kubetune_eval_complete", "gauge", "1 when every item got an answer, 0 for a partial run")
EVALUATE = (EVAL_ACCURACY, EVAL_NAME_ACCURACY, EVAL_FALSE_CALL, EVAL_MISSED_CALL, EVAL_UNPARSEABLE,
            EVAL_SCHEMA_VIOLATION, EVAL_LATENCY, EVAL_CHAT_LOSS, EVAL_CHAT_PERPLEXITY, EVAL_JUDGE_WIN, EVAL_ITEMS,
            EVAL_COMPLETE)

LEVEL = ("concurrency",)
BENCH_REQUESTS = Metric("kubetune_bench_requests_total", "counter",
                        "Requests sent at this concurrency, by outcome (completed, failed)", (*LEVEL, "outcome"))
BENCH_OUTPUT_TOKENS = Metric("kubetune_bench_output_tokens_total", "counter",
                             "Output tokens of the completed requests (the server's usage)", LEVEL)
BENCH_DURATION = Metric("kubetune_bench_duration_seconds", "gauge",
                        "Wall time of the level, first request sent to last finished", LEVEL)
BENCH_REQUEST_THROUGHPUT = Metric("kubetune_bench_requests_per_second", "gauge", "Completed requests per second",
                                  LEVEL)
BENCH_OUTPUT_THROUGHPUT = Metric("kubetune_bench_output_tokens_per_second", "gauge", "Output tokens per second",
                                 LEVEL)
BENCH_TOKEN_THROUGHPUT = Metric("kubetune_bench_tokens_per_second", "gauge", "Prompt and output tokens per second",
                                LEVEL)
LATENCY = (*LEVEL, "statistic")  # statistic: mean, p50, p95, p99
BENCH_TTFT = Metric("kubetune_bench_time_to_first_token_seconds", "gauge",
                    "Time from sending a request to its first token", LATENCY)
BENCH_TPOT = Metric("kubetune_bench_time_per_output_token_seconds", "gauge",
                    "Time per output token after the first, per request", LATENCY)
BENCH_ITL = Metric("kubetune_bench_inter_token_latency_seconds", "gauge", "Time between streamed chunks", LATENCY)
BENCH_E2E = Metric("kubetune_bench_e2e_request_latency_seconds", "gauge",
                   "Time from sending a request to its last chunk", LATENCY)
BENCH_SCALING = Metric("kubetune_bench_throughput_scaling_ratio", "gauge",
                       "Output tokens per second over the single-request level's", LEVEL)
BENCH_COUNTS_AGREE = Metric("kubetune_bench_server_counts_agree", "gauge",
                            "1 when the server's own counters match the completed requests and output tokens, 0 "
                            "when not (absent without them)", LEVEL)
BENCH_COMPLETE = Metric("kubetune_bench_complete", "gauge", "1 when every level ran, 0 for a partial sweep")
BENCH = (BENCH_REQUESTS, BENCH_OUTPUT_TOKENS, BENCH_DURATION, BENCH_REQUEST_THROUGHPUT, BENCH_OUTPUT_THROUGHPUT,
         BENCH_TOKEN_THROUGHPUT, BENCH_TTFT, BENCH_TPOT, BENCH_ITL, BENCH_E2E, BENCH_SCALING, BENCH_COUNTS_AGREE,
         BENCH_COMPLETE)

# The live probe (`kubetune-job probe`): what a client of the stable endpoint gets for a fixed set of tool-calling
# and no-call requests, every interval. A long-lived pusher: each round replaces its group's figures.
PROBE_ACCURACY = Metric("kubetune_probe_accuracy_ratio", "gauge",
                        "Share of the probe's requests answered correctly (a request without an answer counts wrong)")
PROBE_UNPARSEABLE = Metric("kubetune_probe_unparseable_ratio", "gauge",
                           "Share of answered probe requests whose calls did not reach the client as tool_calls "
                           "(call markup left in the content, arguments that are not a JSON object)")
PROBE_SCHEMA_VIOLATION = Metric("kubetune_probe_schema_violation_ratio", "gauge",
                                "Share of calling answers with arguments outside the offered JSON Schema")
PROBE_CALL = Metric("kubetune_probe_call_ratio", "gauge",
                    "Share of the requests that need a call answered with a (parsed) call")
PROBE_NO_CALL = Metric("kubetune_probe_no_call_ratio", "gauge",
                       "Share of the requests that need no call answered without one")
PROBE_FAILED = Metric("kubetune_probe_failed_ratio", "gauge", "Share of the probe's requests that got no answer")
PROBE_LATENCY = Metric("kubetune_probe_latency_seconds", "gauge", "Probe request latency, by statistic (p50, p95)",
                       ("statistic",))
PROBE_LAST_RUN = Metric("kubetune_probe_last_run_timestamp_seconds", "gauge", "Unix time the last round ended")
PROBE_ROUNDS = Metric("kubetune_probe_rounds_total", "counter", "Probe rounds run by this prober")
PROBE = (PROBE_ACCURACY, PROBE_UNPARSEABLE, PROBE_SCHEMA_VIOLATION, PROBE_CALL, PROBE_NO_CALL, PROBE_FAILED,
         PROBE_LATENCY, PROBE_LAST_RUN, PROBE_ROUNDS)

ALL = (*OPERATOR, *TRAIN, *EVALUATE, *BENCH, *PROBE)


@dataclass(frozen=True)
class PushGroup:
    """A Pushgateway group: the push `job` and the grouping labels, in order. A push replaces its group."""

    job: str
    labels: tuple[str, ...]

    def key(self, **values: str | None) -> dict[str, str]:
        """The grouping key; labels given no value are left out."""
        unknown = set(values) - set(self.labels)
        if unknown:
            raise ValueError(f"{self.job}: not grouping labels: {', '.join(sorted(unknown))}")
        return {label: str(values[label]) for label in self.labels if values.get(label)}


TRAIN_GROUP = PushGroup("kubetune-train", (NS, "run", "stage"))
# `run` for a FineTuneRun's evaluations, `serve` for a ModelServe's promotion gate; `model`: which model.
EVAL_GROUP = PushGroup("kubetune-eval", (NS, "run", "serve", "model"))
BENCH_GROUP = PushGroup("kubetune-bench", (NS, "serve", "revision", MODEL_NAME))
PROBE_GROUP = PushGroup("kubetune-probe", (NS, "serve", "revision", MODEL_NAME))


def run_owns(group: Mapping[str, str], namespace: str, run: str) -> bool:
    """Whether a pushed group (its labels, `job` included) belongs to the FineTuneRun `namespace/run`."""
    return (group.get("job") in (TRAIN_GROUP.job, EVAL_GROUP.job) and group.get(NS) == namespace
            and group.get("run") == run and not group.get("serve"))


def serve_owns(group: Mapping[str, str], namespace: str, serve: str) -> bool:
    """Whether a pushed group belongs to the ModelServe `namespace/serve` (benchmarks, gate evaluations)."""
    return group.get("job") in (BENCH_GROUP.job, EVAL_GROUP.job, PROBE_GROUP.job) and group.get(NS) == namespace \
        and group.get("serve") == serve


# ---------------------------------------------------------------- vLLM's own (served by every replica)
# Labelled `model_name` (the served name) and `engine`; the PodMonitor adds the pod's namespace and the
# `kubetune.io/serve` and `kubetune.io/revision` labels (as kubetune_io_serve, kubetune_io_revision).

VLLM_RUNNING = "vllm:num_requests_running"
VLLM_WAITING = "vllm:num_requests_waiting"
VLLM_KV_CACHE = "vllm:kv_cache_usage_perc"  # a share in [0, 1] despite the name
VLLM_PROMPT_TOKENS = "vllm:prompt_tokens_total"
VLLM_GENERATION_TOKENS = "vllm:generation_tokens_total"
VLLM_REQUEST_SUCCESS = "vllm:request_success_total"  # by finished_reason (stop, length, abort, error, ...)
VLLM_PREEMPTIONS = "vllm:num_preemptions_total"
VLLM_TTFT = "vllm:time_to_first_token_seconds"  # histograms: _bucket, _sum, _count
VLLM_ITL = "vllm:inter_token_latency_seconds"
VLLM_E2E = "vllm:e2e_request_latency_seconds"
VLLM = (VLLM_RUNNING, VLLM_WAITING, VLLM_KV_CACHE, VLLM_PROMPT_TOKENS, VLLM_GENERATION_TOKENS, VLLM_REQUEST_SUCCESS,
        VLLM_PREEMPTIONS, VLLM_TTFT, VLLM_ITL, VLLM_E2E)
VLLM_HISTOGRAMS = (VLLM_TTFT, VLLM_ITL, VLLM_E2E)
