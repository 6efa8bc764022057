"""Tool-calling rows in Salesforce xlam-function-calling-60k's format: a query, the offered tools and
the calls answering it (`tools` and `answers` as JSON strings)."""

from __future__ import annotations

import json
import random
from typing import Any

from . import queries
from .catalogue import TOOL_NAMES, TOOLS
from .config import DEFAULT, Config
from .spelling import SPELLINGS, spelled
from .values import sentence


def _tool_row(rng: random.Random, row_id: int, config: Config) -> dict[str, Any]:
    listed = None
    if rng.random() >= config.parallel_share:
        plan = [rng.choice(TOOLS)]
    elif rng.random() < 0.5:  # the same tool several times with different arguments
        plan = [rng.choice(TOOLS)] * rng.choice((2, 2, 2, 3))
        if config.listed_share and rng.random() < config.listed_share:
            listed = queries.listed(plan[0], rng, len(plan))
    else:  # several different tools, one call each
        plan = rng.sample(TOOLS, rng.choice((2, 2, 2, 3)))
    if listed is not None:
        text, arguments = listed
        calls = [(plan[0].name, text, a) for a in arguments]
    else:
        calls = [(tool.name, *queries.call(tool, rng)) for tool in plan]
        text = calls[0][1]
        in_sentence = config.in_sentence_share and rng.random() < config.in_sentence_share
        for _, q, _ in calls[1:]:
            if in_sentence:
                text = rng.choice(queries.IN_SENTENCE).format(a=text.rstrip(".?!"), b=q)
            else:
                text = rng.choice(queries.JOINERS).format(a=text, b=q)
    needed = list(dict.fromkeys(tool.name for tool in plan))
    weights = config.distractors_single if len(needed) == 1 else config.distractors_several
    extra = min(rng.choices(range(len(weights)), weights=weights)[0], config.max_offered - len(needed))
    offered = needed + [n for n in rng.sample(TOOL_NAMES, extra + len(needed)) if n not in needed][:extra]
    rng.shuffle(offered)
    prefix = rng.choice(queries.PREFIXES)
    respelled = config.respelled_share and rng.random() < config.respelled_share
    spelling = rng.randrange(1, SPELLINGS) if respelled else 0
    answers = []
    for name, _, args in calls:
        spelled_name, keys, _ = spelled(name, spelling)
        answers.append({"name": spelled_name, "arguments": {keys[k]: v for k, v in args.items()}})
    return {
        "id": row_id,
        "query": prefix + (text if prefix.endswith(", ") else sentence(text)),
        "tools": "[" + ", ".join(spelled(n, spelling)[2] for n in offered) + "]",
        "answers": json.dumps(answers, ensure_ascii=False),
    }


def xlam_rows(n: int, seed: int = 0, config: Config = DEFAULT) -> list[dict[str, Any]]:
    """`n` tool-calling rows, about `config.parallel_share` of them with several calls."""
    rng = random.Random(seed)
    return [_tool_row(rng, i, config) for i in range(n)]
