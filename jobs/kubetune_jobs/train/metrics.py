"""The `kubetune_train_*` metrics: their names live here and nowhere else.

They are pushed to a Prometheus Pushgateway under job `kubetune-train` with the grouping labels
`run` (the FineTuneRun) and `stage`, so Prometheus (scraping the gateway with honor_labels) sees one
series per run and stage. Importing this module needs only prometheus_client, not torch.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

log = logging.getLogger(__name__)

PUSH_JOB = "kubetune-train"
STEP = "kubetune_train_step"
TOTAL_STEPS = "kubetune_train_total_steps"
LOSS = "kubetune_train_loss"
TOKENS_PER_SECOND = "kubetune_train_tokens_per_second"
LEARNING_RATE = "kubetune_train_learning_rate"
EVAL_LOSS = "kubetune_train_eval_loss"

_HELP = {
    STEP: "Optimizer steps done in this stage",
    TOTAL_STEPS: "Optimizer steps planned for this stage",
    LOSS: "Training loss at the last logged step",
    TOKENS_PER_SECOND: "Training throughput (non-padding tokens per second) since this process started training",
    LEARNING_RATE: "Learning rate at the last logged step",
    EVAL_LOSS: "Loss on the held-out split at the last evaluation",
}


class MetricsPusher:
    """Holds the gauges of one stage and pushes them; a failing gateway is logged once, never fatal."""

    def __init__(self, url: str, run: str, stage: str) -> None:
        self.url = url
        self.grouping = {"run": run, "stage": stage}
        self.registry = CollectorRegistry()
        self.gauges = {name: Gauge(name, doc, registry=self.registry) for name, doc in _HELP.items()}
        self._warned = False

    def push(self, values: dict[str, float | None]) -> None:
        for name, value in values.items():
            if value is not None:
                self.gauges[name].set(value)
        try:
            push_to_gateway(self.url, job=PUSH_JOB, registry=self.registry, grouping_key=self.grouping, timeout=5)
        except OSError as exc:
            # Metrics are for watching; losing them must not lose the training run.
            if not self._warned:
                log.warning("could not push metrics to %s: %s", self.url, exc)
                self._warned = True
