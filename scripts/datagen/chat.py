"""Chat rows in HuggingFaceH4/ultrachat_200k's format: short conversations of one to three exchanges,
no tool calls, some of them small worked maths problems (`Config.worked_share`)."""

from __future__ import annotations

import hashlib
import random
from typing import Any

from . import chat_texts as texts
from .config import DEFAULT, Config
from .values import sentence


def _worked(rng: random.Random) -> tuple[str, str]:
    """A maths question with its worked answer, numbers drawn and the answer computed."""
    kind = rng.randrange(7)
    if kind == 0:
        w, h = rng.randint(2, 20), rng.randint(2, 30)
        q = rng.choice(("what is the area of a rectangle {w} m wide and {h} m long?",
                        "a room is {w} m by {h} m. How many square metres is its floor?"))
        return q.format(w=w, h=h), f"Area = width × length = {w} × {h} = {w * h} square metres."
    if kind == 1:
        w, h = rng.randint(2, 20), rng.randint(2, 30)
        return (f"what is the perimeter of a {w} by {h} rectangle?",
                f"Perimeter = 2 × ({w} + {h}) = {2 * (w + h)}.")
    if kind == 2:
        r = rng.randint(1, 15)
        if rng.random() < 0.5:
            return (f"what is the circumference of a circle with radius {r} cm?",
                    f"C = 2πr = 2 × π × {r} ≈ {2 * 3.14159265 * r:.2f} cm.")
        return f"how big is the area of a circle of radius {r}?", f"A = πr² = π × {r}² ≈ {3.14159265 * r * r:.2f}."
    if kind == 3:
        b, h = rng.randint(2, 24), rng.randint(2, 18)
        return (f"find the area of a triangle with base {b} and height {h}.",
                f"Area = ½ × base × height = ½ × {b} × {h} = {b * h / 2:g}.")
    if kind == 4:
        t = rng.randint(2, 6)
        d = t * rng.randint(15, 110)
        return (f"a train covers {d} km in {t} hours. What is its average speed?",
                f"Average speed = distance / time = {d} / {t} = {d // t} km/h.")
    if kind == 5:
        a, n = rng.randint(2, 9), rng.randint(2, 5)
        return (f"what is the derivative of {a}x^{n}?",
                f"Using the power rule, d/dx {a}x^{n} = {a * n}x" + (f"^{n - 1}." if n > 2 else "."))
    side = rng.randint(2, 12)
    return f"what is the volume of a cube with {side} cm sides?", f"V = side³ = {side}³ = {side ** 3} cubic centimetres."


def _asked(rng: random.Random, question: str) -> str:
    """The question as a user writes it, sometimes after a lead-in ("Out of curiosity, ...")."""
    prefix = rng.choice(texts.ASK_PREFIXES)
    return prefix + (question if prefix else sentence(question))


def _qa(rng: random.Random, config: Config) -> tuple[str, str]:
    if config.worked_share and rng.random() < config.worked_share:
        q, a = _worked(rng)
        return _asked(rng, q), a
    r = rng.random()
    if r < 0.62:
        q, a = rng.choice(texts.FACTS)
        return _asked(rng, q), a
    if r < 0.92:
        pool, questions, answers = rng.choice(texts.FAMILY_QUESTIONS)
        item = rng.choice(pool)
        q, a = rng.choice(questions).format(*item), rng.choice(answers).format(*item)
        return _asked(rng, q), sentence(a)
    template, answer, topics = rng.choice(texts.WRITING)
    topic = rng.choice(topics) if topics else ""
    return sentence(template.format(topic)), answer.format(topic, topic.title())


def _chat_row(rng: random.Random, config: Config) -> dict[str, Any]:
    turns: list[tuple[str, str]] = []
    if rng.random() < 0.3:
        turns.append((rng.choice(texts.GREETINGS), rng.choice(texts.GREETING_REPLIES)))
    turns.append(_qa(rng, config))
    if len(turns) < 3 and rng.random() < 0.5:
        turns.append(_qa(rng, config))
    if len(turns) < 3 and rng.random() < 0.35:
        turns.append((rng.choice(texts.THANKS), rng.choice(texts.THANKS_REPLIES)))
    messages = [m for user, assistant in turns
                for m in ({"role": "user", "content": user}, {"role": "assistant", "content": assistant})]
    prompt = messages[0]["content"]
    return {"prompt": prompt, "prompt_id": hashlib.sha256(prompt.encode()).hexdigest(), "messages": messages}


def chat_rows(n: int, seed: int = 0, config: Config = DEFAULT) -> list[dict[str, Any]]:
    """`n` short conversations (1-3 exchanges, no tool calls) in HuggingFaceH4/ultrachat_200k's format."""
    rng = random.Random(seed)
    return [_chat_row(rng, config) for _ in range(n)]
