"""`spec.vllm.extraArgs` is read as vLLM reads it, without vLLM in the operator.

The operator reads argv with `modelserve.vllm_args` over a table generated from vLLM's parser
(assets/vllm-args.json, scripts/vllm_args.py). Here, in vLLM's own venv: the table is the one vLLM 0.32's
parser gives now (a new vLLM changes it: regenerate with `scripts/vllm_args.py --write`), and a corpus of
argv lists (every option string of the table, written in full, with `=`, with underscores, dotted and
abbreviated, each after the operator's own argv, and the cases that slipped past the earlier hand-made check)
is read by both: the same settings written, item for item, and refused where vLLM's parser refuses.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kubetune_jobs.serving.vllm_server import server_env, vllm_python
from kubetune_operator.modelserve import api, vllm, vllm_args

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "vllm_args.py"
TABLE = ROOT / "operator" / "kubetune_operator" / "assets" / "vllm-args.json"
# The operator's own argv before extraArgs: as the operator writes it, and in LoRA mode (its last flag,
# --lora-modules, takes every bare item after it).
SPECS = {"plain": {"model": {"hub": "Qwen/Qwen2.5-0.5B-Instruct"}, "resources": {"gpus": 1}},
         "lora": {"model": {"fineTuneRun": {"name": "run"}, "lora": {"enabled": True}}, "resources": {"gpus": 0}}}
# What the issue found passing the earlier check, and the corners of vLLM's and argparse's reading.
CORNERS = [
    ["-tp", "4"], ["--ho", "0.0.0.0"], ["--dt", "float16"], ["--gp", "0.5"], ["--no-enable-auto-tool-choice"],
    ["assistant"], ["--uds", "/tmp/vllm.sock"], ["other=/adapters/x"], ["--enable-prefix-caching", "other=/x"],
    ["--api-ke", "k"], ["--served_model_name=other"], ["--max-num-batched-tokens 8192"], ["-t", "4"], ["-tp4"],
    ["-tp=4"], ["-qawq"], ["-q", "awq"], ["-n2"], ["-dph"], ["-dph1"], ["-dph=1"], ["--enable-lora="],
    ["--enable-lora=1"], ["-O3"], ["-O", "3"], ["-O"], ["-O=2"], ["-Odecode"], ["-O", "x"], ["--help=all"], ["-h"],
    ["--", "x"], ["--seed", "--", "5"], ["-"], ["a", "b"], ["--seed", "-5"], ["--seed", "-0.5"], ["--seed"],
    ["--compilation-config.mode", "3", "--compilation-config.x=1"], ["--compilation-config.x"],
    ["--speculative-config.k+", "a,b"], ["--enable-lora.x", "1"], ["--served-model-name.x", "y"], ["--d"],
    ["--conf", "x.yaml"], ["--lora-modules", "a=/b", "c=/d", "--seed", "1"], ["--seed", "1", "--seed", "2"],
    ["--middleware", "a", "--middleware", "b"], ["--x.y=1"], ["--nope"], ["--nope=1", "v"], ["-x"], ["---x"],
    ["--hf-token"], ["--hf-token", "t"], ["--device-memory-utilization", "0.5"],
]


def forms(option: str, entry: dict[str, Any]) -> list[list[str]]:
    """Ways to write one option string: in full, with `=`, with underscores, dotted, abbreviated."""
    value = [] if entry["nargs"] == 0 else ["1"] * (entry["nargs"] if isinstance(entry["nargs"], int) else 1)
    out = [[option, *value], [f"{option}=1"], [f"{option}.key", "1"]]
    if option.startswith("--"):
        out.append([option.replace("-", "_").replace("__", "--", 1), *value])
        for cut in (1, 3):
            prefix = option[:-cut]
            if len(prefix) > 3:
                out.append([prefix, *value])  # unique (read as the option) or ambiguous (refused)
    return out


def base_argv(name: str) -> list[str]:
    """The operator's argv for one of SPECS, before extraArgs."""
    return vllm.argv(api.parse_spec(SPECS[name]), "assistant", vllm.ModelFiles(
        model="/models/m", chat_template="/models/m/chat_template.jinja",
        adapter="/models/a" if name == "lora" else None))


def corpus() -> list[tuple[str | None, list[str]]]:
    """(the spec whose argv comes first, or None for none; the extra items)."""
    options = json.loads(TABLE.read_text())["options"]
    extras = [[], *CORNERS] + [f for o, e in options.items() for f in forms(o, e) if o != "--config"]
    return [(name, extra) for name in (None, *SPECS) for extra in extras]


def full(name: str | None, extra: list[str]) -> list[str]:
    return (base_argv(name) if name else []) + extra


@pytest.fixture(scope="module")
def vllms() -> dict[str, Any]:
    """The table vLLM's parser gives, and what it does with each argv of the corpus (one run of vLLM's venv)."""
    python = vllm_python()
    cases = corpus()
    done = subprocess.run([str(python), str(SCRIPT), "--parse"], input=json.dumps([full(*c) for c in cases]),
                          capture_output=True, text=True, timeout=600, env=server_env(python=python))
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    return {"table": out["table"], "cases": list(zip(cases, out["readings"], strict=True))}


def test_the_checked_in_table_is_vllms(vllms: dict[str, Any]) -> None:
    assert vllms["table"] == TABLE.read_text(), "vLLM's parser changed: run scripts/vllm_args.py --write"
    assert json.loads(vllms["table"])["vllm"] == "0.32.0"


def ours(argv: list[str]) -> tuple[list[str], bool]:
    """The settings `vllm_args.read` says an argv writes (the first positional is vLLM's model_tag), and
    whether it says vLLM refuses the argv."""
    reading = vllm_args.read(argv)
    sets = [u.dest for u in reading.uses] + ["model_tag"] * min(1, len(reading.positionals))
    return sorted(sets), bool(reading.refusals) or len(reading.positionals) > 1


def test_argv_is_read_as_vllms_parser_reads_it(vllms: dict[str, Any]) -> None:
    assert len(vllms["cases"]) > 3000
    wrong = []
    for case, real in vllms["cases"]:
        argv = full(*case)
        sets, refused = ours(argv)
        if real["error"] is None:
            if refused or sets != sorted(real["sets"]):
                wrong.append((argv, "vLLM accepts, setting", sorted(real["sets"]), "read as", sets, refused))
        elif not refused or not Counter(real["sets"]) <= Counter(sets):
            wrong.append((argv, "vLLM refuses", real["error"], "after setting", real["sets"], "read as", sets))
    assert wrong == [], wrong[:20]
    refusals = sum(1 for _, real in vllms["cases"] if real["error"])
    assert 100 < refusals < len(vllms["cases"]) - 1000  # both kinds are exercised


def test_extra_args_that_make_vllm_write_an_owned_setting_are_refused(vllms: dict[str, Any]) -> None:
    """By vLLM's own reading: extraArgs that make its parser write one of the operator's settings (or a
    positional, its model_tag) beyond what the operator's argv writes are refused; the check is the
    validation every command runs."""
    owned = {vllm_args.dest(s.flag) for s in vllm.settings(api.parse_spec(SPECS["plain"]), "n",
                                                            vllm.ModelFiles(model="m"))}
    owned |= {vllm_args.dest(f) for f in vllm.REFUSED} | {"model_tag"}
    alone = {case[0]: Counter(real["sets"]) for case, real in vllms["cases"] if case[0] and not case[1]}
    touching = 0
    for (name, extra), real in vllms["cases"]:
        if name is None or not extra or real["error"]:
            continue
        touched = set(Counter(real["sets"]) - alone[name]) & owned
        problems = vllm.extra_args_problems(api.parse_spec({**SPECS[name], "vllm": {"extraArgs": extra}}))
        if touched:
            touching += 1
            assert problems, (name, extra, touched)
    assert touching > 100
