"""Synthetic source data we write ourselves (a dev tool, not shipped): a tool catalogue, xlam-format
tool-calling rows and ultrachat-format chat rows.

Used for the quickstart's bundled datasets (`scripts/make_quickstart_data.py`), for the prepare
benchmark and the tools-stage variants (`bench/`) and by tests; `scripts/` must be on the path.
Nothing here is copied from BFCL, xlam or any evaluation set (see `catalogue`).

Everything is a pure function of `(n, seed, config)` drawn with `random.Random(seed)`, so the same
call always yields the same rows; `config` is a frozen `Config` whose defaults draw the bundled sets.
Generation is cheap (templates and pools only) because the benchmark asks for 110 000 rows at once.
"""

from .catalogue import SEED_TOOL_NAMES, tool_catalogue
from .chat import chat_rows
from .config import DEFAULT, Config
from .jsonl import write_jsonl
from .xlam import xlam_rows

__all__ = ["DEFAULT", "SEED_TOOL_NAMES", "Config", "chat_rows", "tool_catalogue", "write_jsonl", "xlam_rows"]
