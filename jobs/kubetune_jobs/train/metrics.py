"""The `kubetune_train_*` metrics: their names live here and nowhere else.

They are pushed to a Prometheus Pushgateway under job `kubetune-train` with the grouping labels
`run` (the FineTuneRun) and `stage`, so Prometheus (scraping the gateway with honor_labels) sees one
series per run and stage. Pushing is best-effort (`kubetune_jobs.pushgateway`): no gateway trouble
stops training. Importing this module needs only prometheus_client, not torch.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from ..pushgateway import Gateway

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
        self.gateway = Gateway(url)
        self.grouping = {"run": run, "stage": stage}
        self.registry = CollectorRegistry()
        self.gauges = {name: Gauge(name, doc, registry=self.registry) for name, doc in _HELP.items()}

    def push(self, values: dict[str, float | None], *, force: bool = True) -> bool:
        """Set and push the gauges; `force` false lets a push right after a failed one be skipped."""
        for name, value in values.items():
            if value is not None:
                self.gauges[name].set(value)
        return self.gateway.push(PUSH_JOB, self.registry, self.grouping, timeout=5, force=force)
