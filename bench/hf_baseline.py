"""The baseline every training bench compares our trainer with: plain transformers `Trainer` + PEFT LoRA.

Same tokenized rows as the train job (its own `tokenize_rows`: chat template, assistant-only labels),
the model's own full-logits loss, transformers' default sampler, and the train job's progress callback,
so that tokens/s (non-padding, from the end of the first step) and peak GPU memory mean the same thing on
both sides. Returns the progress record.

`raw_loop` is the same model, rows and batches with no Trainer at all (forward, backward, AdamW step):
what the Trainer's loop itself costs per step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def train(model_path: str, data: Path, work: Path, *, steps: int, precision: str, max_seq_length: int,
          gradient_checkpointing: bool = False, batch_size: int = 4, optim: str = "adamw_torch") -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from kubetune_jobs import storage
    from kubetune_jobs.train.progress import Progress, make_callback

    cuda = torch.cuda.is_available()
    tokenizer, tokenized, model = _setup(model_path, data, precision, max_seq_length, gradient_checkpointing)
    args = TrainingArguments(output_dir=str(work / "trainer"), per_device_train_batch_size=batch_size,
                             max_steps=steps, learning_rate=2e-4, save_strategy="no", report_to="none",
                             logging_steps=1, seed=42, data_seed=42, include_num_input_tokens_seen="non_padding",
                             bf16=precision == "bf16", fp16=precision == "fp16", optim=optim, use_cpu=not cuda)
    progress = Progress(storage.location(work), None, "bench", "hf")
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(tokenized),
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
                      callbacks=[make_callback(progress)])
    trainer.train()
    progress.update(state="succeeded")
    return progress.data


def raw_loop(model_path: str, data: Path, work: Path, *, steps: int, precision: str, max_seq_length: int,
             gradient_checkpointing: bool = False, batch_size: int = 4) -> dict[str, Any]:
    import json
    import random
    import time

    import torch
    from transformers import DataCollatorForSeq2Seq

    tokenizer, tokenized, model = _setup(model_path, data, precision, max_seq_length, gradient_checkpointing)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    collate = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    order = random.Random(42)
    model.train()
    start = tokens = 0
    loss = torch.zeros(())
    for step in range(steps):
        batch = collate(order.sample(tokenized, batch_size))
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if step == 0:  # as the job's figure: from the end of the first step
            start = time.monotonic()
        else:
            tokens += int(batch["attention_mask"].sum())
    record = {"state": "succeeded", "step": steps, "loss": float(loss),
              "tokens_per_second": round(tokens / max(time.monotonic() - start, 1e-9), 2),
              "gpu_memory_peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None}
    work.mkdir(parents=True, exist_ok=True)
    (work / "progress.json").write_text(json.dumps(record))
    return record


def _setup(model_path: str, data: Path, precision: str, max_seq_length: int,
           gradient_checkpointing: bool) -> tuple[Any, list[dict[str, Any]], Any]:
    """Tokenizer, the job's tokenized rows, and the LoRA-wrapped model (on the GPU where there is one)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kubetune_jobs import storage
    from kubetune_jobs.cli import DEFAULT_TARGET_MODULES
    from kubetune_jobs.train.data import read_rows, tokenize_rows

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = read_rows(storage.location(data / "train.jsonl"), required=True)
    tokenized = tokenize_rows(rows, tokenizer, max_seq_length).rows
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]
    base = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    if torch.cuda.is_available():
        base = base.cuda()
    if gradient_checkpointing:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        base.enable_input_require_grads()
    model = get_peft_model(base, LoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                                            target_modules=DEFAULT_TARGET_MODULES.split(",")))
    return tokenizer, tokenized, model
