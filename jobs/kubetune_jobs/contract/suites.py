"""Evaluation suite names: what a FineTuneRun or ModelServe may ask for is exactly what evaluate runs.

  * `bfcl-<category>` — a BFCL v4 category scored with BFCL's AST rules;
  * `seed-tools` — the origin document's seven tools with our prompts;
  * `heldout` — call / no-call rows of the run's own held-out split;
  * `chat` — chat rows of that split (loss and perplexity, optionally a judge).

On a command line a suite is `NAME` or `NAME:N` (its first N items).
"""

from __future__ import annotations

BFCL_PREFIX = "bfcl-"
# Single-turn categories scored by AST matching: with ground truth, or (irrelevance) none.
BFCL_NON_LIVE = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
BFCL_LIVE = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance")
BFCL_CATEGORIES = BFCL_NON_LIVE + BFCL_LIVE

SEED_TOOLS = "seed-tools"
HELDOUT = "heldout"
CHAT = "chat"
NEEDS_DATA = (HELDOUT, CHAT)  # read the run's prepared eval.jsonl

# The CRDs list exactly these, so the API server refuses a suite evaluate cannot run.
KNOWN = tuple(f"{BFCL_PREFIX}{c}" for c in BFCL_CATEGORIES) + (SEED_TOOLS, HELDOUT, CHAT)

# The suites of the reference run (what a FineTuneRun evaluates when it names none).
REFERENCE = ("bfcl-simple_python", "bfcl-multiple", "bfcl-parallel", "bfcl-parallel_multiple",
             "bfcl-irrelevance", SEED_TOOLS, HELDOUT, CHAT)


class SuiteArgError(ValueError):
    """A `--suite` argument that names no known suite or has a bad item count."""


def suite_arg(name: str, limit: int | None = None) -> str:
    """The `--suite` argument for a suite and its optional item limit."""
    return name if limit is None else f"{name}:{limit}"


def parse_suite_arg(text: str) -> tuple[str, int | None]:
    """`NAME` or `NAME:N` -> (name, limit); an unknown name or a bad count raises SuiteArgError."""
    name, sep, count = text.partition(":")
    if name not in KNOWN:
        raise SuiteArgError(f"unknown suite {name!r}; known suites: {', '.join(KNOWN)}")
    if not sep:
        return name, None
    if not count.isdigit() or int(count) < 1:
        raise SuiteArgError(f"--suite {text!r}: the item count after ':' must be a positive integer")
    return name, int(count)
