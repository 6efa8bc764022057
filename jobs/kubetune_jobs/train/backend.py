"""The two ways of building the model to train: Unsloth on CUDA, TRL + PEFT elsewhere.

Only model construction and the merged export differ between them; data, masking, callbacks,
checkpoints and the trainer itself (TRL's SFTTrainer, which Unsloth patches) are shared.

Import order matters: Unsloth patches transformers, TRL and PEFT when it is imported, so `choose()`
decides without importing any of them, and `prepare()` imports Unsloth before anything else that
pulls in transformers. Nothing in this module imports transformers at module level.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any

from .. import models
from .. import precision as precisions
from ..contract.options import TrainOptions
from ..precision import Precision

log = logging.getLogger(__name__)


class BackendError(RuntimeError):
    """The requested backend cannot run here; the message says why."""


def cuda_available() -> bool:
    import torch  # torch itself is fine to import before Unsloth; transformers is not

    return torch.cuda.is_available()


def choose(requested: str, distribution: str = "ddp", world_size: int = 1) -> str:
    """`unsloth` or `trl` for `--backend auto|unsloth|trl`. Several ranks: Unsloth trains data-parallel
    (DDP, one model per GPU); it does not shard (FSDP), so `auto` falls back to TRL + PEFT there."""
    cuda = cuda_available()
    has_unsloth = importlib.util.find_spec("unsloth") is not None
    sharded = world_size > 1 and distribution == "fsdp"
    if requested == "unsloth":
        if not cuda:
            raise BackendError("--backend unsloth needs a CUDA device; use --backend trl on this machine")
        if not has_unsloth:
            raise BackendError("--backend unsloth: the `unsloth` package is not installed (extra `gpu`)")
        if sharded:
            raise BackendError("--backend unsloth does not support --distribution fsdp; use --backend auto or "
                               "trl (TRL + PEFT), or --distribution ddp")
        return "unsloth"
    if requested == "auto" and cuda:
        if has_unsloth and sharded:
            log.warning("Unsloth does not support FSDP; training with TRL + PEFT across %d ranks", world_size)
            return "trl"
        if has_unsloth:
            return "unsloth"
        log.warning("CUDA is available but unsloth is not installed; training with TRL + PEFT")
    return "trl"


def prepare(backend: str) -> None:
    """Import what must come first. Call before anything imports transformers, trl or peft."""
    if backend == "unsloth":
        import unsloth  # noqa: F401  (patches transformers/trl/peft on import)


def precision(requested: str) -> Precision:
    """`--precision`: auto decides for this machine (see `kubetune_jobs.precision`); others are kept."""
    import torch

    cuda = torch.cuda.is_available()
    if requested == "auto":
        # On CPU, bf16 autocast (LoRA weights and optimizer state stay fp32) ran at 1.5x fp32's tokens/s
        # with AMX and at 0.57x with AVX-512 BF16 but no AMX: a probe tells them apart, not the flags.
        return precisions.auto(precisions.TRAINING)
    if requested == "fp16" and not cuda:
        raise BackendError("--precision fp16 needs a CUDA device")
    return Precision(requested, f"requested (--precision {requested})")


def optimizer(requested: str) -> str:
    if requested != "auto":
        return requested
    return "adamw_8bit" if cuda_available() else "adamw_torch"


def gradient_checkpointing(cfg: TrainOptions) -> bool:
    return cfg.gradient_checkpointing if cfg.gradient_checkpointing is not None else cuda_available()


def load_tokenizer(path: str, ref: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # noqa: BLE001 - any loader failure becomes one line naming the model
        raise models.ModelError(f"cannot load the tokenizer of model {ref}: {_first_line(exc)}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(cfg: TrainOptions, backend: str, path: str, prec: Precision) -> tuple[Any, Any | None]:
    """The PEFT-wrapped model to train, and (Unsloth only) the tokenizer it patched."""
    if cfg.load_in_4bit and not cuda_available():
        raise BackendError("--load-in-4bit needs a CUDA device (bitsandbytes)")
    try:
        if backend == "unsloth":
            return _load_unsloth(cfg, path, prec)
        return _load_trl(cfg, path, prec), None
    except (BackendError, models.ModelError):
        raise
    except Exception as exc:  # noqa: BLE001
        raise models.ModelError(f"cannot load model {cfg.model}: {_first_line(exc)}") from exc


def _lora_kwargs(cfg: TrainOptions, model_config: Any) -> dict[str, Any]:
    # The declared LoRA shape (contract.hyperparams: `peft`), with no bias terms trained.
    kwargs = {**cfg.trainer_arguments("peft"), "bias": "none"}
    if cfg.lora_top_layers is not None:
        kwargs["layers_to_transform"] = top_layers(cfg.lora_top_layers, model_config)
    return kwargs


def top_layers(count: int, model_config: Any) -> list[int]:
    """The indices of the last `count` transformer layers. Nothing below the lowest adapted layer needs a
    gradient, so autograd's backward pass ends there."""
    total = getattr(model_config, "num_hidden_layers", None)
    if not isinstance(total, int) or total < 1:
        raise BackendError(f"--lora-top-layers: the model's config gives no layer count (num_hidden_layers) to "
                           f"count the top {count} layers from")
    if count > total:
        raise BackendError(f"--lora-top-layers {count}: the model has only {total} layers")
    return list(range(total - count, total))


def _load_trl(cfg: TrainOptions, path: str, prec: Precision) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": prec.dtype}
    if cfg.load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=prec.dtype,
        )
        kwargs["device_map"] = {"": _local_device()}  # each rank's own GPU under torchrun
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    gc = gradient_checkpointing(cfg)
    if cfg.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gc)
    elif gc:
        # LoRA leaves the embeddings frozen; checkpointed blocks need an input that requires grad.
        model.enable_input_require_grads()
    return get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **_lora_kwargs(cfg, model.config)))


def _load_unsloth(cfg: TrainOptions, path: str, prec: Precision) -> tuple[Any, Any]:
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=path,
        max_seq_length=cfg.max_seq_length,
        dtype=None if cfg.precision == "auto" else prec.dtype,  # None: Unsloth picks bf16 where supported
        load_in_4bit=cfg.load_in_4bit,
        device_map={"": _local_device()},  # Unsloth's default puts every rank on GPU 0
    )
    model = FastLanguageModel.get_peft_model(
        model,
        use_gradient_checkpointing="unsloth" if gradient_checkpointing(cfg) else False,
        random_state=cfg.seed,
        **_lora_kwargs(cfg, model.config),
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _local_device() -> int:
    """The CUDA device of this rank (torchrun's LOCAL_RANK; 0 without torchrun)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
