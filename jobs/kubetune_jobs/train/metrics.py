"""Pushing a training stage's `kubetune_train_*` metrics (named in `contract.metrics`).

They go to a Prometheus Pushgateway under job `kubetune-train`, grouped by `namespace` (when given),
`run` (the FineTuneRun) and `stage`, so Prometheus (scraping the gateway with honor_labels) sees one
series per run and stage. The tokens trained on are a counter, so `rate()` gives the throughput.
Pushing is best-effort (`contract.pushgateway`): no gateway trouble stops training. Importing this
module needs only prometheus_client, not torch.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from ..contract import metrics as m
from ..contract.pushgateway import Gateway

STEP, PLANNED_STEPS, LOSS, TOKENS = m.TRAIN_STEP.name, m.TRAIN_PLANNED_STEPS.name, m.TRAIN_LOSS.name, m.TRAIN_TOKENS.name
# progress.json field -> metric
FIELDS = {"step": m.TRAIN_STEP, "total": m.TRAIN_PLANNED_STEPS, "loss": m.TRAIN_LOSS, "eval_loss": m.TRAIN_EVAL_LOSS,
          "learning_rate": m.TRAIN_LEARNING_RATE, "tokens": m.TRAIN_TOKENS}


class MetricsPusher:
    """Holds the metrics of one stage and pushes them; a failing gateway is logged once, never fatal."""

    def __init__(self, url: str, run: str, stage: str, namespace: str | None = None) -> None:
        self.gateway = Gateway(url)
        self.grouping = m.TRAIN_GROUP.key(namespace=namespace, run=run, stage=stage)
        self.registry = CollectorRegistry()
        self.metrics = {metric.name: metric.create(self.registry) for metric in m.TRAIN}
        self._tokens = 0.0

    def push(self, values: dict[str, float | None], *, force: bool = True) -> bool:
        """Set the figures (by metric name) and push; `force` false lets a push right after a failed one be
        skipped. The token count is the stage's total so far: the counter moves up to it."""
        for name, value in values.items():
            if value is None:
                continue
            if name == TOKENS:
                if value > self._tokens:
                    self.metrics[name].inc(value - self._tokens)
                    self._tokens = value
            else:
                self.metrics[name].set(value)
        return self.gateway.push(m.TRAIN_GROUP.job, self.registry, self.grouping, timeout=5, force=force)
