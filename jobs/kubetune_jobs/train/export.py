"""The stage's results: `<output>/adapter/` (PEFT adapter) and `<output>/merged/` (base + adapter).

The merged model is what the next stage and vLLM load, so its tokenizer carries the chat template we
trained on (`serving.template.apply_serving_template`). Both directories are built locally and
published whole.

Precision of the merged weights: on CUDA the merge is written in the training precision (bf16 where
supported); from a 4-bit run the adapter is merged into the base reloaded in 16 bits, never into the
quantized weights. On CPU the merged model is fp32 whatever the training precision (bf16 autocast
leaves the LoRA weights fp32): rounding the merge to bf16 can erase small LoRA updates, and the CPU
path is for tests and demos, not for serving.
"""

from __future__ import annotations

import gc
import logging
import shutil
from pathlib import Path
from typing import Any

from .. import storage
from ..contract.layout import ADAPTER_DIR, MERGED_DIR
from ..serving.template import apply_serving_template
from .backend import Precision, cuda_available

log = logging.getLogger(__name__)


def _save_tokenizer(tokenizer: Any, model_type: str, dest: Path) -> None:
    apply_serving_template(tokenizer, model_type)
    tokenizer.save_pretrained(dest)


def export(model: Any, tokenizer: Any, *, backend: str, base_path: str, prec: Precision, merge: bool,
           output: storage.Location, workdir: Path, saved_adapter: Path | None = None) -> None:
    """Save the adapter and (unless `merge` is false) the merged model, then publish both. `saved_adapter`:
    the adapter is already saved there (gathered from FSDP shards by the Trainer; `model` is then None)."""
    adapter = workdir / ADAPTER_DIR
    if saved_adapter is not None:
        from peft.utils import CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME
        from transformers import AutoConfig

        model_type = AutoConfig.from_pretrained(base_path).model_type
        adapter.mkdir(parents=True)
        for name in (CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME):  # the adapter, not the Trainer's other files
            shutil.copy2(saved_adapter / name, adapter / name)
    else:
        model_type = model.config.model_type
        model.save_pretrained(adapter)
    _save_tokenizer(tokenizer, model_type, adapter)
    merged = workdir / MERGED_DIR
    if merge:
        if backend == "unsloth":
            # Unsloth dequantizes a 4-bit base back to 16 bits before merging.
            model.save_pretrained_merged(str(merged), tokenizer, save_method="merged_16bit")
        else:
            del model
            gc.collect()
            _merge_trl(base_path, adapter, prec, merged)
        _save_tokenizer(tokenizer, model_type, merged)
    output.child(ADAPTER_DIR).upload_dir(adapter)
    log.info("adapter published to %s", output.child(ADAPTER_DIR).uri)
    if merge:
        output.child(MERGED_DIR).upload_dir(merged)
        log.info("merged model published to %s", output.child(MERGED_DIR).uri)


def _merge_trl(base_path: str, adapter: Path, prec: Precision, dest: Path) -> None:
    # The base is reloaded unquantized rather than merging in place, so a 4-bit (QLoRA) run merges into
    # 16-bit weights too, and the published adapter is proven to load.
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=prec.dtype if cuda_available() else torch.float32)
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    merged.save_pretrained(dest)
