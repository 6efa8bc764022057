"""The fine-tuning hyperparameters, each declared once: name, type, default, bounds, help, whether it changes
what a stage produces, and which trainer argument takes it. Everything else is derived from here:

    kubetune-job train --<name>      options.TrainOptions gets one flag per declared field (booleans
                                     --x/--no-x, tuples comma-separated) and checks the declared bounds
    FineTuneRun spec.lora.<cr>       the operator's LoraSpec/TrainingSpec (and each stage's overrides) are
    FineTuneRun spec.training.<cr>   built from these models: field, default, bounds and description
    SFTConfig(<sft>=value)           the train job passes `sft` fields to TRL's SFTConfig and `peft` fields
    LoraConfig(<peft>=value)         to PEFT's LoraConfig (Unsloth's get_peft_model takes the same keywords)
    the step fingerprint             a field that `changes_results` enters it when set to another value
                                     than its default (options._Options.command_line_identity)

A field's name is its flag's; `cr` names the FineTuneRun field where the two schemes differ (`lora.r` is
`--lora-r`). A field without `sft`/`peft` is one the train job resolves itself (precision, the optimizer's
`auto`, the batch plan, the backend, the export) and reads by name.

The defaults are the reference run's (DESIGN.md). A default is also what every step made before its flag
existed did: a new field must default to the old behaviour, and an existing default never changes meaning
(outputs made under the old default would pass for the new one), so such a change is a new value instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from .launch import DEFAULT_DISTRIBUTION, DISTRIBUTIONS

REFERENCE_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
BACKENDS = ("auto", "unsloth", "trl")
TRAINERS = ("sft", "peft")


@dataclass(frozen=True)
class Param:
    """What a declared field is besides a flag. It rides in the field's `json_schema_extra` slot as a
    callable that adds nothing to a JSON schema (pydantic keeps no other per-field extra)."""

    cr: str | None = None  # the FineTuneRun field (snake_case) where it is not the flag's name
    alias: str | None = None  # its camelCase spelling where pydantic's would differ (loadIn4bit)
    sft: tuple[str, ...] = ()  # SFTConfig keywords that take the value as it is
    peft: tuple[str, ...] = ()  # LoraConfig / Unsloth get_peft_model keywords that take it as it is
    changes_results: bool = True  # False: how a stage is checkpointed or watched, not what it produces

    def __call__(self, schema: dict[str, Any]) -> None:
        return None

    def keywords(self, trainer: str) -> tuple[str, ...]:
        return {"sft": self.sft, "peft": self.peft}[trainer]


def param(default: Any, help: str, *, cr: str | None = None, alias: str | None = None,
          sft: str | tuple[str, ...] = (), peft: str | tuple[str, ...] = (), changes_results: bool = True,
          **bounds: Any) -> Any:
    """A declared hyperparameter: a pydantic field (default, help, bounds such as ge/lt/max_length) that
    also says where it goes (see `Param`)."""
    where = Param(cr=cr, alias=alias, sft=(sft,) if isinstance(sft, str) else tuple(sft),
                  peft=(peft,) if isinstance(peft, str) else tuple(peft), changes_results=changes_results)
    return Field(default, description=help, json_schema_extra=where, **bounds)


class Declaration(BaseModel):
    """A group of declared hyperparameters (one FineTuneRun object: spec.lora, spec.training)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def declared(cls) -> Iterator[tuple[str, FieldInfo, Param]]:
        """(name, pydantic field, Param) of every field, in declaration order."""
        for name, info in cls.model_fields.items():
            where = info.json_schema_extra
            if not isinstance(where, Param):
                raise TypeError(f"{cls.__name__}.{name} is not declared with param()")
            yield name, info, where

    @classmethod
    def check(cls, values: Any) -> None:
        """Raise ValueError naming the flag of the first of `values`' fields (an object with this
        declaration's attributes) outside its declared type or bounds."""
        try:
            cls.model_validate({name: getattr(values, name) for name in cls.model_fields})
        except ValidationError as exc:
            err = exc.errors()[0]
            flag = "--" + str(err["loc"][0]).replace("_", "-")
            raise ValueError(f"{flag} {_words(err)}") from None


def _words(err: Any) -> str:
    ctx = err.get("ctx") or {}
    for key, words in (("ge", "must be at least"), ("gt", "must be greater than"), ("le", "must be at most"),
                       ("lt", "must be less than")):
        if key in ctx:
            return f"{words} {ctx[key]}, got {err['input']!r}"
    if err["type"] == "too_short":
        return f"needs at least {ctx.get('min_length')} value(s)"
    return f"{err['msg'][0].lower()}{err['msg'][1:]}, got {err['input']!r}"


ModuleName = Annotated[str, Field(min_length=1, max_length=64)]


class LoraParameters(Declaration):
    """LoRA adapter shape (reference run: r=16, alpha=16, dropout 0 on all attention and MLP projections)."""

    lora_r: int = param(16, "LoRA rank.", cr="r", peft="r", ge=1, le=512)
    lora_alpha: int = param(16, "LoRA alpha (scaling = alpha / r).", cr="alpha", peft="lora_alpha", ge=1, le=1024)
    lora_dropout: float = param(0.0, "Dropout on the LoRA path.", cr="dropout", peft="lora_dropout", ge=0.0, lt=1.0)
    target_modules: tuple[ModuleName, ...] = param(
        REFERENCE_TARGET_MODULES, "Module names that receive adapters.",
        peft="target_modules", min_length=1, max_length=32)
    # The train job turns it into PEFT's layers_to_transform, from the model's own layer count.
    lora_top_layers: int | None = param(
        None, "Adapt only the last N transformer layers (unset: every layer). The backward pass stops at the "
              "lowest adapted layer, so a step costs less the fewer layers are adapted; the model must have at "
              "least N layers.", cr="top_layers", ge=1, le=1024)


class TrainingParameters(Declaration):
    """Supervised fine-tuning hyperparameters (reference: batch 4 x accum 4, lr 2e-4, 1 epoch, bf16, QLoRA)."""

    batch_size: int = param(4, "Per-device batch size.", sft=("per_device_train_batch_size",
                                                               "per_device_eval_batch_size"), ge=1, le=1024)
    grad_accum: int = param(4, "Gradient accumulation steps per rank: an optimizer step covers batch size x grad "
                               "accum x world size rows (every GPU of every node); unused when a global batch is "
                               "set.", ge=1, le=1024)
    global_batch: int | None = param(
        None, "Rows per optimizer step over all ranks (the batch plan): each rank accumulates global batch / "
              "(batch size x world size) micro-batches, so a step means the same on 1 GPU or 16; the world size "
              "must divide it.", cr="global_batch_size", ge=1, le=1_048_576)
    distribution: Literal[DISTRIBUTIONS] = param(  # type: ignore[valid-type]
        DEFAULT_DISTRIBUTION, "How ranks share a step with several GPUs: ddp (data-parallel, each GPU holds the "
                              "model) or fsdp (parameters, gradients and optimizer state sharded, for models "
                              "that do not fit one GPU; TRL + PEFT, not with 4-bit base weights).")
    learning_rate: float = param(2e-4, "Peak learning rate.", sft="learning_rate", gt=0.0, le=1.0)
    epochs: float = param(1.0, "Epochs over the stage's data.", sft="num_train_epochs", gt=0.0, le=100.0)
    max_steps: int = param(-1, "Stop after this many optimizer steps (-1: run the epochs).", sft="max_steps", ge=-1)
    max_seq_length: int = param(2048, "Longest tokenized row used for training: longer rows are truncated, and "
                                      "left out when no assistant token is left.", sft="max_length", ge=64,
                                le=131072)
    # transformers 5 reads a warmup_steps below 1 as a share of the total steps.
    warmup_ratio: float = param(0.03, "Share of steps spent warming the learning rate up.", sft="warmup_steps",
                                ge=0.0, lt=1.0)
    lr_scheduler: Literal[SCHEDULERS] = param(  # type: ignore[valid-type]
        "linear", "Learning-rate schedule.", cr="scheduler", sft="lr_scheduler_type")
    weight_decay: float = param(0.0, "AdamW weight decay.", sft="weight_decay", ge=0.0)
    optim: str = param("auto", "Optimizer (a transformers optim name); auto: AdamW 8-bit on a GPU, AdamW (torch) "
                               "elsewhere.", cr="optimizer", max_length=64)
    precision: Literal[PRECISIONS] = param(  # type: ignore[valid-type]
        "bf16", "Compute precision; auto: bf16 on GPUs that support it (else fp16), and on a CPU whichever of "
                "bf16 autocast and fp32 a short measured probe finds faster.")
    load_in_4bit: bool = param(True, "QLoRA: 4-bit base weights (needs a CUDA GPU; false trains 16-bit LoRA).",
                               alias="loadIn4bit")
    packing: bool = param(False, "Pack short rows into full sequences (padding-free).", sft="packing")
    gradient_checkpointing: bool | None = param(
        None, "Recompute activations in the backward pass to save memory (unset: on with a GPU, off on a CPU).")
    save_steps: int = param(100, "Checkpoint every N optimizer steps (resumes after preemption).",
                            sft="save_steps", changes_results=False, ge=1)
    keep_checkpoints: int = param(2, "Newest checkpoints kept in the store.", changes_results=False, ge=1, le=100)
    eval_steps: int = param(0, "Evaluate the held-out loss every N optimizer steps (0: before and after "
                               "training only).", ge=0)
    backend: Literal[BACKENDS] = param("auto", "auto: Unsloth on CUDA, TRL + PEFT elsewhere.")  # type: ignore[valid-type]
    seed: int = param(42, "Seed of the batch order and the adapter's initial weights: the same seed, data and "
                          "settings start a run the same way (multi-threaded sums can still differ).",
                      sft=("seed", "data_seed"), ge=0, le=2**32 - 1)
    merge: bool = param(True, "Also export the merged model (base + adapter); false publishes the adapter only "
                              "(what a later stage or an evaluation cannot start from).")


DECLARATIONS: tuple[type[Declaration], ...] = (LoraParameters, TrainingParameters)
