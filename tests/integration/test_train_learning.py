"""A short tool-calling stage on SmolLM2-135M-Instruct must teach the model to call our tools.

The data (tests/fixtures/toolcalls) is our own: 8 invented tools, 56 training rows and 16 held-out
prompts with argument values never seen in training. Accuracy is exact match of the parsed calls
(name and arguments) on greedy generations, before and after training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubetune_jobs import chat_template, cli
from kubetune_jobs.models import resolve

DATA = Path(__file__).parent.parent / "fixtures" / "toolcalls"


def call_accuracy(model_dir: str, rows: list[dict[str, Any]]) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    prompts = [chat_template.render({"messages": r["messages"][:-1], "tools": r["tools"]},
                                    add_generation_prompt=True) for r in rows]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=48, do_sample=False,
                             eos_token_id=tokenizer.convert_tokens_to_ids(chat_template.END_OF_TURN),
                             pad_token_id=tokenizer.pad_token_id)
    texts = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=False)
    hits = 0
    for row, text in zip(rows, texts, strict=True):
        expected = chat_template.assistant_calls(row["messages"][-1])
        hits += chat_template.parse_tool_calls(text).calls == expected
    return hits / len(rows)


@pytest.mark.slow
def test_short_stage_teaches_tool_calls(tmp_path: Path) -> None:
    """In the precision `auto` picks here, what users get: bf16 autocast where this CPU runs it clearly
    faster (it must keep LoRA's small updates: its weights stay fp32), else fp32. The other precision's
    path runs through the job on the tiny model (test_precision_jobs); training the real model in both
    cost a slow CPU an extra 14 steps in its slower precision."""
    base = resolve("bundled:smollm2-135m")
    held_out = [json.loads(line) for line in (DATA / "eval.jsonl").read_text().splitlines()]
    before = call_accuracy(base, held_out)

    out = tmp_path / "tools"
    assert cli.main(["train", "--model", "bundled:smollm2-135m", "--data", str(DATA), "--output", str(out),
                     "--max-steps", "14", "--batch-size", "4", "--grad-accum", "1", "--learning-rate", "1.5e-3",
                     "--warmup-ratio", "0.1", "--max-seq-length", "384", "--save-steps", "1000",
                     "--precision", "auto", "--no-load-in-4bit", "--stage-name", "tools"]) == 0
    progress = json.loads((out / "progress.json").read_text())
    after = call_accuracy(str(out / "merged"), held_out)
    print(f"{progress['precision']}: exact-match tool calls: {before:.2f} -> {after:.2f}; eval loss "
          f"{progress['eval_loss_start']:.3f} -> {progress['eval_loss']:.3f}")
    assert progress["eval_loss"] < 0.5 * progress["eval_loss_start"]
    # The merge on CPU is written in fp32 whatever the training precision, so nothing learnt is rounded away.
    assert json.loads((out / "merged" / "config.json").read_text())["dtype"] == "float32"
    assert after >= 0.6 and after >= before + 0.5
