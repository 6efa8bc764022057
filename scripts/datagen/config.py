"""The generator's knobs: one frozen `Config`, every field with its default and why it has it.

Entry points take a `Config` (`xlam_rows(n, seed, config=...)`); a variant is
`dataclasses.replace(Config(), parallel_share=0.45)`. The shares added after the first data sets
(listed, in-sentence, respelled, worked) draw no random number when 0, so sets made before them replay
exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# The most different tools one row asks for (plans call up to 3), so the fewest a row must be able to offer.
MOST_TOOLS_NEEDED = 3


@dataclass(frozen=True)
class Config:
    # Share of tool rows whose answer holds several calls (xlam has about 25%; measured on the quickstart,
    # more helps a small model learn parallel calls).
    parallel_share: float = 0.3
    # Of the rows calling one tool several times, the share asking in one sentence with a listed value
    # ("the weather in Oslo, Rome and Lima") rather than one sentence per call.
    listed_share: float = 0.5
    # Of the rows asking for calls of different tools (or one tool, not as a list), the share asking in one
    # sentence joined by "and"/"then" rather than one sentence per call. Users write both; a model that only
    # saw separate sentences reads "do X and Y" as one request.
    in_sentence_share: float = 0.5
    # Weights for 0, 1, 2... distractor tools offered beside the needed ones (rows with one needed tool, rows
    # with several), and the most tools a row offers. Choosing among several tools is the skill; each tool
    # costs ~110 tokens of prompt, so rows offer 2-5 tools, rarely 6.
    distractors_single: tuple[float, ...] = (5, 15, 25, 25, 20, 10)
    distractors_several: tuple[float, ...] = (40, 40, 20)
    max_offered: int = 6
    # Share of rows whose tools are spelled otherwise than in the catalogue: camelCase names and parameters,
    # another verb (fetch_ for get_), or both. Real APIs name one operation many ways; a model that only
    # ever sees one spelling per tool can call it from memory instead of reading the offered schema.
    # Measured on four draws (docs/history.md): 0.3 raised seed-tools (unseen tools) from 0.530 to 0.606 on
    # average.
    respelled_share: float = 0.3
    # Share of chat questions that are small worked maths problems, answered in text. No catalogue tool
    # computes areas, speeds or derivatives (plain arithmetic is left out: a calculator tool would fit it),
    # so as no-call turns they teach that a computational request still gets no call when the offered
    # tools do not fit it; without them every task-like request in the tools stage is a call or a near
    # miss of a catalogue tool.
    worked_share: float = 0.15

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_share") and not (isinstance(value, int | float) and 0 <= value <= 1):
                raise ValueError(f"Config.{f.name} must be a number in [0, 1], got {value!r}")
            if f.name.startswith("distractors_") and not (
                    isinstance(value, tuple) and value and all(isinstance(w, int | float) and w >= 0 for w in value)
                    and sum(value) > 0):
                raise ValueError(f"Config.{f.name} must be a tuple of weights >= 0 with a positive sum, got {value!r}")
        if not isinstance(self.max_offered, int) or self.max_offered < MOST_TOOLS_NEEDED:
            raise ValueError(f"Config.max_offered must be an integer >= {MOST_TOOLS_NEEDED} (the most tools one "
                             f"row needs), got {self.max_offered!r}")


DEFAULT = Config()  # what the bundled quickstart sets are drawn with
