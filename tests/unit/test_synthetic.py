"""The synthetic data generator (scripts/datagen): deterministic, well-typed, our own tools, its
settings checked, and the bundled files."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import datagen
from datagen import Config, queries, spelling

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT / "jobs" / "kubetune_jobs" / "assets" / "datasets"

# xlam's Python-style type -> the Python type a valid argument value has.
PY_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool, "List[str]": list,
                             "List[int]": list, "Dict[str, Any]": dict}
ITEM_TYPES: dict[str, type] = {"List[str]": str, "List[int]": int}


def _base(type_: str) -> str:
    return type_.removesuffix(", optional")


def _valid(value: object, type_: str) -> bool:
    expected = PY_TYPES[_base(type_)]
    if expected is not bool and isinstance(value, bool):
        return False  # a bool is an int to Python, never to a schema
    if not isinstance(value, expected):
        return False
    item = ITEM_TYPES.get(_base(type_))
    return item is None or all(isinstance(v, item) and not isinstance(v, bool) for v in value)


@pytest.fixture(scope="module")
def tool_rows() -> list[dict]:
    return datagen.xlam_rows(3000, seed=7)


@pytest.fixture(scope="module")
def chats() -> list[dict]:
    return datagen.chat_rows(1000, seed=7)


def test_same_seed_same_rows_and_other_seed_differs() -> None:
    assert datagen.xlam_rows(200, seed=3) == datagen.xlam_rows(200, seed=3)
    assert datagen.chat_rows(200, seed=3) == datagen.chat_rows(200, seed=3)
    assert datagen.xlam_rows(200, seed=3) != datagen.xlam_rows(200, seed=4)
    assert datagen.chat_rows(200, seed=3) != datagen.chat_rows(200, seed=4)


def test_catalogue_is_large_varied_and_ours() -> None:
    tools = datagen.tool_catalogue()
    names = [t["name"] for t in tools]
    assert len(names) >= 30
    assert len(set(names)) == len(names)
    assert not set(names) & datagen.SEED_TOOL_NAMES
    types = {_base(p["type"]) for t in tools for p in t["parameters"].values()}
    assert {"str", "int", "float", "bool", "List[str]", "List[int]", "Dict[str, Any]"} <= types
    assert types <= set(PY_TYPES), f"types the test cannot check: {types - set(PY_TYPES)}"
    for tool in tools:
        assert tool["description"] and tool["parameters"]
        for name, p in tool["parameters"].items():
            assert p["description"], (tool["name"], name)
            # Optional parameters carry a default of their type (or None); required ones carry none.
            if p["type"].endswith(", optional"):
                assert "default" in p and (p["default"] is None or _valid(p["default"], p["type"])), (tool["name"], name)
            else:
                assert "default" not in p, (tool["name"], name)


def test_a_parameter_name_does_not_decide_its_type() -> None:
    # Measured (docs/history.md): when `location` was only ever an object here, the tuned model wrote
    # {"lat": ..., "long": ...} for any `location`, whatever the offered schema said.
    types = {_base(t["parameters"]["location"]["type"]) for t in datagen.tool_catalogue()
             if "location" in t["parameters"]}
    assert {"str", "Dict[str, Any]"} <= types


def test_tool_rows_have_xlam_shape(tool_rows: list[dict]) -> None:
    assert [r["id"] for r in tool_rows] == list(range(len(tool_rows)))
    for row in tool_rows:
        assert set(row) == {"id", "query", "tools", "answers"}
        assert isinstance(row["tools"], str) and isinstance(row["answers"], str)
        assert row["query"].strip()
        offered = json.loads(row["tools"])
        assert 1 <= len(offered) <= Config().max_offered
        assert len({t["name"] for t in offered}) == len(offered)
        assert not {t["name"] for t in offered} & datagen.SEED_TOOL_NAMES


def _rows_with(**settings: float) -> list[dict]:
    """Rows drawn with some settings changed from the defaults."""
    return datagen.xlam_rows(3000, seed=7, config=dataclasses.replace(Config(), **settings))



def test_settings_are_frozen_checked_and_change_the_rows() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.parallel_share = 0.9  # type: ignore[misc]
    for bad, field in [({"respelled_share": 1.5}, "respelled_share"), ({"worked_share": -0.1}, "worked_share"),
                       ({"max_offered": 2}, "max_offered"), ({"distractors_single": ()}, "distractors_single"),
                       ({"distractors_several": (1, -1)}, "distractors_several")]:
        with pytest.raises(ValueError, match=field):
            Config(**bad)
    assert datagen.xlam_rows(200, seed=3, config=Config(parallel_share=0.6)) != datagen.xlam_rows(200, seed=3)
    assert datagen.chat_rows(200, seed=3, config=Config(worked_share=0.5)) != datagen.chat_rows(200, seed=3)
    # Tool settings do not touch chat rows, and the defaults are what a call without a config draws.
    assert datagen.chat_rows(200, seed=3, config=Config(parallel_share=0.6)) == datagen.chat_rows(200, seed=3)
    assert datagen.xlam_rows(200, seed=3, config=datagen.DEFAULT) == datagen.xlam_rows(200, seed=3)


def test_the_shipped_packages_neither_hold_nor_import_the_generator() -> None:
    for package in (ROOT / "jobs" / "kubetune_jobs", ROOT / "operator" / "kubetune_operator"):
        sources = list(package.rglob("*.py"))
        assert sources
        for path in sources:
            nodes = list(ast.walk(ast.parse(path.read_text())))
            imported = {a.name for n in nodes if isinstance(n, ast.Import) for a in n.names}
            imported |= {n.module or "" for n in nodes if isinstance(n, ast.ImportFrom)}
            assert not {m for m in imported if m.split(".")[0] == "datagen" or "synthetic" in m}, path
            assert path.name != "synthetic.py", path

@pytest.fixture(scope="module")
def respelled_rows() -> list[dict]:
    return _rows_with(respelled_share=0.5)


@pytest.mark.parametrize("rows", ["tool_rows", "respelled_rows"])
def test_every_call_is_offered_and_well_typed(rows: str, request: pytest.FixtureRequest) -> None:
    tool_rows = request.getfixturevalue(rows)
    optional_set = 0
    for row in tool_rows:
        offered = {t["name"]: t for t in json.loads(row["tools"])}
        answers = json.loads(row["answers"])
        assert answers
        for call in answers:
            assert set(call) == {"name", "arguments"}
            assert call["name"] in offered, row
            params = offered[call["name"]]["parameters"]
            args = call["arguments"]
            assert set(args) <= set(params), row
            for name, p in params.items():
                if not p["type"].endswith(", optional"):
                    assert name in args, (row, name)
                elif name in args:
                    optional_set += 1
                if name in args:
                    assert _valid(args[name], p["type"]), (row, name, args[name])
    assert optional_set > len(tool_rows) // 10  # optional parameters are exercised, not only defaults


def test_parallel_share_and_kinds(tool_rows: list[dict]) -> None:
    answers = [json.loads(r["answers"]) for r in tool_rows]
    parallel = [a for a in answers if len(a) > 1]
    share = len(parallel) / len(answers)
    assert Config().parallel_share - 0.08 <= share <= Config().parallel_share + 0.08
    assert all(len(a) <= 3 for a in answers)
    same_tool = [r for r, a in zip(tool_rows, answers, strict=True) if len(a) > 1 and len({c["name"] for c in a}) == 1]
    assert 0 < len(same_tool) < len(parallel)  # both repeated-tool and mixed-tool parallel calls occur
    # Some repeated-tool rows ask in one sentence with the varying value listed ("... in Oslo and Rome").
    # (Drawn without requests joined inside a sentence, so that a row without a joiner is a listed one.)
    same_tool = [r for r in _rows_with(in_sentence_share=0)
                 if len(a := json.loads(r["answers"])) > 1 and len({c["name"] for c in a}) == 1]
    listed = [r for r in same_tool if not any(j.split("{b}")[0].replace("{a}", "") in r["query"]
                                              for j in queries.JOINERS)]
    assert 0 < len(listed) < len(same_tool)
    for row in listed:
        calls = json.loads(row["answers"])
        varying = [k for k in calls[0]["arguments"] if len({json.dumps(c["arguments"][k]) for c in calls}) > 1]
        assert len(varying) == 1, row
        assert all(str(c["arguments"][varying[0]]) in row["query"] for c in calls), row
    # Most rows offer distractors besides the right tool (choosing is the skill), few offer the maximum.
    offered = [len(json.loads(r["tools"])) for r in tool_rows]
    assert sum(n > len({c["name"] for c in a}) for n, a in zip(offered, answers, strict=True)) > len(offered) * 0.8
    assert sum(n == Config().max_offered for n in offered) < len(offered) // 5


def test_several_requests_are_asked_in_one_sentence_or_in_several(tool_rows: list[dict]) -> None:
    """Rows with calls of different tools ask "do X and Y" in one sentence about Config.in_sentence_share
    of the time, else one sentence per request; the calls come in the order asked."""
    mixed = [r for r in tool_rows if len({c["name"] for c in json.loads(r["answers"])}) > 1]
    joiners = [j.split("{b}")[0].replace("{a}", "") for j in queries.JOINERS]
    separate = [r for r in mixed if any(j in r["query"] for j in joiners)]
    share = 1 - len(separate) / len(mixed)
    assert Config().in_sentence_share - 0.1 <= share <= Config().in_sentence_share + 0.1
    in_sentence = [r for r in mixed if r not in separate]
    fragments = [j.split("{b}")[0].replace("{a}", "") for j in queries.IN_SENTENCE]
    for row in in_sentence:
        assert any(f in row["query"] for f in fragments), row["query"]
    assert not any(r["query"] for r in _rows_with(in_sentence_share=0)
                   if len({c["name"] for c in json.loads(r["answers"])}) > 1
                   and not any(j in r["query"] for j in joiners))


def test_tool_rows_are_varied(tool_rows: list[dict]) -> None:
    names_used = {c["name"] for r in tool_rows for c in json.loads(r["answers"])}
    # Every tool is used under its catalogue name; the other names are respellings (tested below).
    assert {t["name"] for t in datagen.tool_catalogue()} <= names_used
    assert len({r["query"] for r in tool_rows}) > 0.95 * len(tool_rows)


def test_respelled_rows_spell_whole_rows_otherwise_and_keep_the_schemas(respelled_rows: list[dict]) -> None:
    catalogue = {t["name"]: t for t in datagen.tool_catalogue()}
    camel_seed = {spelling.camel(n) for n in datagen.SEED_TOOL_NAMES}
    # A catalogue tool under another spelling: same description and parameter specs, in the same order.
    by_shape = {(t["description"], json.dumps(list(t["parameters"].values()))): t for t in catalogue.values()}
    respelled = 0
    for row in respelled_rows:
        offered = json.loads(row["tools"])
        names = {t["name"] for t in offered}
        assert not names & (datagen.SEED_TOOL_NAMES | camel_seed), row
        if names - set(catalogue):
            respelled += 1
        for tool in offered:
            original = by_shape[(tool["description"], json.dumps(list(tool["parameters"].values())))]
            assert len(tool["parameters"]) == len(original["parameters"])
    assert 0.3 < respelled / len(respelled_rows) < 0.55  # half the rows, less those with nothing to respell
    spelled = {c["name"] for r in respelled_rows for c in json.loads(r["answers"])}
    assert {"getForecast", "fetch_forecast", "fetchForecast", "get_forecast"} <= spelled
    assert any(k == "fromUnit" for r in respelled_rows for c in json.loads(r["answers"]) for k in c["arguments"])


def test_chat_rows_are_short_conversations_without_tools(chats: list[dict]) -> None:
    for row in chats:
        assert set(row) == {"prompt", "prompt_id", "messages"}
        messages = row["messages"]
        assert 2 <= len(messages) <= 6 and len(messages) % 2 == 0
        assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2)
        assert all(set(m) == {"role", "content"} and m["content"].strip() for m in messages)
        assert row["prompt"] == messages[0]["content"]
        assert "<tool_call>" not in json.dumps(messages)
        assert len(" ".join(m["content"] for m in messages).split()) < 120  # well under ~150 tokens
    assert len({json.dumps(r["messages"]) for r in chats}) > 0.6 * len(chats)
    assert len({m["content"] for r in chats for m in r["messages"] if m["role"] == "assistant"}) >= 100


def test_bundled_files_equal_what_the_script_writes(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_quickstart_data.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for name in ("quickstart-chat.jsonl", "quickstart-tools.jsonl"):
        fresh = (tmp_path / name).read_bytes()
        assert fresh == (DATASETS / name).read_bytes(), f"{name} is stale: rerun scripts/make_quickstart_data.py"
        assert len(fresh) < 1_000_000
        rows = [json.loads(line) for line in fresh.splitlines()]
        assert rows and all(list(r) == sorted(r) for r in rows)


def _held_out_prompts() -> set[str]:
    """What the quickstart evaluates on: seed-tools and the BFCL categories it slices."""
    from kubetune_jobs.evaluate import suites

    seed = json.loads((ROOT / "jobs" / "kubetune_jobs" / "assets" / "seed_tools.json").read_text())
    prompts = {it["prompt"] for it in seed["items"]}
    for name in ("bfcl-simple_python", "bfcl-irrelevance"):
        prompts |= {it.messages[-1]["content"] for it in suites.load(name, data=None, limit=None)}
    return {p.lower().strip().rstrip(".?!") for p in prompts}


def test_bundled_data_never_asks_a_held_out_question() -> None:
    """The evaluation prompts stay out of what the demo trains on, in any phrasing wrapper."""
    prompts = _held_out_prompts()
    assert len(prompts) > 300
    for name in ("quickstart-chat.jsonl", "quickstart-tools.jsonl"):
        asked = [
            str(r.get("query") or "") + "\n" + "\n".join(m["content"] for m in r.get("messages", []) if m["role"] == "user")
            for r in map(json.loads, (DATASETS / name).read_text().splitlines())
        ]
        leaked = sorted(p for p in prompts if any(p in text.lower() for text in asked))
        assert not leaked, f"{name} asks held-out evaluation questions: {leaked}"
