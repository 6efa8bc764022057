"""How sure a model is that it should call: the probability of `<tool_call>` as the first answer token.

    .venv/bin/python bench/first_token.py BASELINE_MODEL MODEL [MODEL ...] [--limit 16]

Greedy decoding calls exactly when the first token of `<tool_call>` is the most likely first token, so
on prompts where no call is right this probability says how far a model is from answering well, where
accuracy only says whether it crossed the line. For each model (a merged model directory or any
reference `kubetune-job evaluate --local-model` takes), over the BFCL irrelevance slice and the
seed-tools no-call items, prompts rendered exactly as evaluation renders them, it prints the mean
probability, how many prompts put more than half on it, and how many make it the top token. The first
model is the baseline the others are read against, measured in the same run.
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="baseline first, then the models to compare")
    ap.add_argument("--limit", type=int, default=16, help="BFCL irrelevance items (default 16, as the quickstart)")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kubetune_jobs.chat_template import render
    from kubetune_jobs.evaluate import suites
    from kubetune_jobs.models import resolve

    groups = {
        "bfcl-irrelevance": suites.load("bfcl-irrelevance", limit=args.limit),
        "seed-tools no-call": [it for it in suites.load("seed-tools") if it.category == "no_call"],
    }
    for i, ref in enumerate(args.models):
        path = resolve(ref)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        call = tokenizer.encode("<tool_call>", add_special_tokens=False)[0]
        label = "baseline" if i == 0 else "model"
        for name, items in groups.items():
            probs, top = [], 0
            for item in items:
                text = render({"messages": item.messages, "tools": item.tools or None}, add_generation_prompt=True)
                enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
                with torch.inference_mode():
                    p = model(**enc).logits[0, -1].float().softmax(-1)
                probs.append(float(p[call]))
                top += int(p.argmax()) == call
            print(f"{label} {ref}: {name}: mean P(<tool_call>) {sum(probs) / len(probs):.3f}, "
                  f"> 0.5 on {sum(x > 0.5 for x in probs)}/{len(probs)}, top token on {top}/{len(probs)}")


if __name__ == "__main__":
    main()
