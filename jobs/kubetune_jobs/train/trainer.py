"""The SFT trainer class for each backend.

TRL 1.16's SFTTrainer computes its loss through a tiled "fused LM head" that also works out per-token
entropy and top-1 accuracy for its logs, on every step and without a switch. On CPU that pass costs
about a third of a step (measured: bench/train_cpu.py, BENCHMARKS.md). Our labels are assistant-only, so
most positions carry no loss at all: `LeanSFTTrainer` asks the model for logits only at the positions
that predict a labelled token (`logits_to_keep`, the model's own head, scaling and soft-capping included)
and takes the cross-entropy there. Same loss, same gradients; token accuracy stays in the logs because
it falls out of those logits for free. Unsloth patches SFTTrainer with its own fused loss, so the
Unsloth backend keeps the stock class. `LeanSFTTrainer` also batches rows of similar length together
(`sampling.LengthWindowSampler`), so less of each step goes to padding.

Import only after `backend.prepare()`: this module imports trl.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from trl import SFTTrainer

from .data import IGNORE_INDEX as IGNORE
from .sampling import LengthWindowSampler


def labelled_positions(labels: torch.Tensor) -> torch.Tensor:
    """Sequence positions whose next token is labelled in at least one row of the batch."""
    return (labels[:, 1:] != IGNORE).any(dim=0).nonzero().squeeze(-1)


@dataclass
class LabelledLoss:
    loss: torch.Tensor
    correct: torch.Tensor  # labelled tokens the model ranks first
    count: torch.Tensor  # labelled tokens in the batch
    outputs: Any


def labelled_loss(model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> LabelledLoss:
    """Mean next-token cross-entropy over labelled tokens, with logits computed only where needed.

    `num_items_in_batch` (the labelled tokens of the whole accumulated batch, from the Trainer) makes
    gradient accumulation average over tokens rather than micro-batches, as in transformers' own loss.
    """
    inputs = dict(inputs)
    labels = inputs.pop("labels")
    inputs["use_cache"] = False
    keep = labelled_positions(labels)
    outputs = model(**inputs, logits_to_keep=keep)
    targets = labels[:, 1:][:, keep]
    logits = outputs.logits.float()
    valid = targets != IGNORE
    count = valid.sum()
    loss_sum = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE,
                                                 reduction="sum")
    denominator = num_items_in_batch if num_items_in_batch is not None else count
    loss = loss_sum / torch.as_tensor(denominator, device=loss_sum.device).clamp(min=1)
    with torch.no_grad():
        correct = ((logits.argmax(-1) == targets) & valid).sum()
    return LabelledLoss(loss, correct, count, outputs)


class LeanSFTTrainer(SFTTrainer):
    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.packing or dataset is None or "input_ids" not in getattr(dataset, "column_names", ()):
            return super()._get_train_sampler(train_dataset)
        return LengthWindowSampler([len(ids) for ids in dataset["input_ids"]], self.args.per_device_train_batch_size,
                                   seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        result = labelled_loss(model, inputs, num_items_in_batch)
        loss = result.loss
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes

        mode = "train" if model.training else "eval"
        accuracy = result.correct / result.count.clamp(min=1)
        self._metrics[mode]["mean_token_accuracy"].append(accuracy.item())
        if mode == "train":
            if "attention_mask" in inputs:
                self._total_train_tokens += int(inputs["attention_mask"].sum())
            elif "position_ids" in inputs:  # padding-free packing
                self._total_train_tokens += inputs["position_ids"].size(1)
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        return (loss, result.outputs) if return_outputs else loss


def trainer_class(backend: str) -> type[Any]:
    return SFTTrainer if backend == "unsloth" else LeanSFTTrainer
