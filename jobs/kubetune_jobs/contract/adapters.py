"""Many LoRA adapters on one served base: the set a serve keeps, and how a vLLM replica converges to it.

The operator (and `kubetune serve`) keep the set: each adapter's name, where its files are and the digest of
their completeness marker (`adapters.json`, an `AdapterSet`). Each replica's adapter agent
(`kubetune-job adapters`) fetches every file of each adapter and checks it against its marker, checks the
adapter against what the server accepts, and loads and unloads through vLLM's runtime LoRA endpoints until the
server answers for exactly the set; it writes what it reached (`ReplicaAdapters`). A replica that restarts
runs the same agent, so it comes back with the set.

Pure: what the two sides must agree on (records, names, the endpoints, the plan, the checks); the HTTP and
file work is the agent's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .records import MIB, Wanted

# vLLM (0.32) serves runtime loads only where its environment says so; the agent's server needs it set.
RUNTIME_UPDATES_ENV = "VLLM_ALLOW_RUNTIME_LORA_UPDATING"
LOAD_PATH = "/v1/load_lora_adapter"
UNLOAD_PATH = "/v1/unload_lora_adapter"
MODELS_PATH = "/v1/models"
CONFIG_FILE = "adapter_config.json"
CONFIG_MAX_BYTES = 1 * MIB


@dataclass(frozen=True)
class Plan:
    """What to ask one server so that it serves exactly the set: unloads first (they free slots), then loads;
    `replace` loads in place (a changed adapter keeps answering under its name while it is swapped)."""

    unload: tuple[str, ...] = ()
    load: tuple[Wanted, ...] = ()
    replace: tuple[Wanted, ...] = ()


def served(models: Any, base: str) -> dict[str, str]:
    """The adapters a server answers for, name -> the directory it loaded, from its `GET /v1/models` body
    (untrusted: anything not shaped as vLLM's listing is left out). An adapter is a model whose parent is the
    base."""
    data = models.get("data") if isinstance(models, dict) else None
    out: dict[str, str] = {}
    for entry in data if isinstance(data, list) else ():
        if isinstance(entry, dict) and entry.get("parent") == base and isinstance(entry.get("id"), str):
            root = entry.get("root")
            out[entry["id"]] = root if isinstance(root, str) else ""
    return out


def plan(wanted: list[Wanted], placed: dict[str, str], loaded: dict[str, str]) -> Plan:
    """The steps from what a server `loaded` (name -> directory) to the `wanted` adapters, each of which the
    agent `placed` in a local directory (name -> directory; an adapter that could not be placed is left as
    the server has it). An adapter loaded from another directory than its placed one has changed."""
    names = {w.name for w in wanted}
    unload = tuple(sorted(n for n in loaded if n not in names))
    load = tuple(w for w in wanted if w.name in placed and w.name not in loaded)
    replace = tuple(w for w in wanted if w.name in placed and w.name in loaded and loaded[w.name] != placed[w.name])
    return Plan(unload, load, replace)


def config_problem(data: bytes, max_rank: int) -> str | None:
    """Why a server with `--max-lora-rank max_rank` cannot serve an adapter, from its adapter_config.json
    (untrusted), or None. vLLM checks some of this itself, late and in its own words; the agent says it first."""
    try:
        config = json.loads(data)
    except (ValueError, RecursionError):
        return f"{CONFIG_FILE} is not JSON"
    if not isinstance(config, dict):
        return f"{CONFIG_FILE} is not a JSON object"
    if config.get("peft_type", "LORA") != "LORA":
        return f"{CONFIG_FILE}: peft_type {str(config.get('peft_type'))[:40]!r} is not LORA"
    rank = config.get("r")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        return f"{CONFIG_FILE}: r is not a positive integer"
    if rank > max_rank:
        return f"rank {rank} exceeds the server's --max-lora-rank {max_rank}"
    alpha = config.get("lora_alpha", rank)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not math.isfinite(alpha) or alpha <= 0:
        return f"{CONFIG_FILE}: lora_alpha is not a positive number"
    if config.get("use_dora"):
        return "DoRA adapters are not served by vLLM"
    if config.get("modules_to_save"):
        return "modules_to_save (fully trained modules beside the LoRA weights) are not served by vLLM"
    return None
