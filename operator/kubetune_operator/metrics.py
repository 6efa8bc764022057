"""The operator's Prometheus metrics (served on /metrics). The jobs' own kubetune_train_*/kubetune_eval_*
series go through the Pushgateway; these describe the controller."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RUNS = Gauge("kubetune_operator_runs", "FineTuneRuns known to the operator, by phase", ["phase"])
STEP_SECONDS = Histogram("kubetune_operator_step_duration_seconds", "Wall time of finished plan steps (Job start "
                         "to completion)", ["kind"], buckets=(10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800,
                                                              57600, 115200))
RECONCILE_ERRORS = Counter("kubetune_operator_reconcile_errors_total", "Reconciles that raised", ["reason"])
EVAL_ACCURACY = Gauge("kubetune_operator_last_eval_accuracy", "Accuracy of the latest evaluated model",
                      ["namespace", "run", "suite"])
JOBS_CREATED = Counter("kubetune_operator_jobs_created_total", "Jobs created", ["kind"])
SERVE_READY_REPLICAS = Gauge("kubetune_operator_modelserve_ready_replicas", "Ready replicas of a ModelServe's "
                             "serving revision", ["namespace", "modelserve"])
SERVE_DECISIONS = Counter("kubetune_operator_modelserve_decisions_total", "Rollouts, promotions and rejections of "
                          "ModelServe revisions", ["namespace", "modelserve", "decision", "reason"])

_phases: dict[tuple[str, str], str] = {}


def set_phase(namespace: str, name: str, phase: str | None) -> None:
    if phase is None:
        _phases.pop((namespace, name), None)
    else:
        _phases[(namespace, name)] = phase
    counts: dict[str, int] = {p: 0 for p in ("Pending", "Running", "Succeeded", "Failed")}
    for p in _phases.values():
        counts[p] = counts.get(p, 0) + 1
    for p, n in counts.items():
        RUNS.labels(phase=p).set(n)


def forget_run(namespace: str, name: str) -> None:
    set_phase(namespace, name, None)
    for sample in list(EVAL_ACCURACY.collect()[0].samples):
        if sample.labels.get("namespace") == namespace and sample.labels.get("run") == name:
            EVAL_ACCURACY.remove(namespace, name, sample.labels["suite"])


def serve(port: int) -> None:
    start_http_server(port)


def forget_serve(namespace: str, name: str) -> None:
    try:
        SERVE_READY_REPLICAS.remove(namespace, name)
    except KeyError:
        pass
