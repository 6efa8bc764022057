"""The CRD's CEL rules, compiled and run (cel-python) at their place in the schema, on real manifests.

The API server runs these rules on every create and update; a rule that does not compile makes the
chart's CRD install fail, and a rule that compiles but means something else lets bad specs through or
blocks good ones. Transition rules (`oldSelf`) run only where an old value exists, as on an update.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from test_crd import COMMITTED
from test_operator_api import EXAMPLE

ENV = celpy.Environment()


def crd_schema() -> dict[str, Any]:
    (doc,) = yaml.safe_load_all(COMMITTED[1].read_text())  # what the chart installs
    return doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def rules(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, str, str]]:
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule["rule"], rule["message"]
    for name, sub in schema.get("properties", {}).items():
        yield from rules(sub, f"{path}.{name}")
    if "items" in schema:
        yield from rules(schema["items"], f"{path}[]")


def failures(schema: dict[str, Any], new: Any, old: Any = None, path: str = "") -> list[tuple[str, str]]:
    """(path, message) of every rule that does not hold for `new` (an update from `old`, or a create)."""
    out = []
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in rule["rule"] and old is None:
            continue
        activation = {"self": celpy.json_to_cel(new)}
        if old is not None:
            activation["oldSelf"] = celpy.json_to_cel(old)
        result = ENV.program(ENV.compile(rule["rule"])).evaluate(activation)
        if isinstance(result, celpy.CELEvalError):
            raise AssertionError(f"{path}: {rule['rule']!r} failed to evaluate: {result}")
        if not result:
            out.append((path, rule["message"]))
    if isinstance(new, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in new:
                out += failures(sub, new[name], old.get(name) if isinstance(old, dict) else None, f"{path}.{name}")
    elif isinstance(new, list) and "items" in schema:
        for i, item in enumerate(new):
            prior = old[i] if isinstance(old, list) and i < len(old) else None
            out += failures(schema["items"], item, prior, f"{path}[{i}]")
    return out


def example_spec() -> dict[str, Any]:
    return yaml.safe_load(Path(EXAMPLE).read_text())["spec"]


def spec_schema() -> dict[str, Any]:
    return crd_schema()["properties"]["spec"]


def test_every_rule_compiles() -> None:
    found = list(rules(crd_schema()))
    assert len(found) >= 5
    for path, rule, _ in found:
        try:
            ENV.compile(rule)
        except celpy.CELParseError as exc:  # the API server would refuse the CRD
            raise AssertionError(f"{path or '.'}: {rule!r} does not compile: {exc}") from exc


def test_the_reference_manifest_passes_on_create_and_on_an_unchanged_update() -> None:
    spec = example_spec()
    assert failures(spec_schema(), spec) == []
    assert failures(spec_schema(), spec, copy.deepcopy(spec)) == []


def test_stage_names_must_be_unique_and_stages_present() -> None:
    spec = example_spec()
    spec["stages"][1]["name"] = spec["stages"][0]["name"]
    assert failures(spec_schema(), spec) == [(".stages", "stage names must be unique")]
    spec["stages"] = []
    assert failures(spec_schema(), spec) == [(".stages", "at least one stage is required")]


@pytest.mark.parametrize(("field", "value"), [("baseModel", "Qwen/Qwen2.5-7B"), ("lora", {"r": 64})])
def test_immutable_fields_cannot_change_on_update(field: str, value: Any) -> None:
    old = example_spec()
    new = copy.deepcopy(old)
    new[field] = value
    messages = [m for _, m in failures(spec_schema(), new, old)]
    assert any(m.startswith(f"spec.{field} is immutable") for m in messages), messages


def test_adding_or_removing_the_hub_token_secret_is_refused() -> None:
    old = example_spec()
    old.pop("hubTokenSecret", None)
    new = copy.deepcopy(old)
    new["hubTokenSecret"] = "hf-token"
    assert ("", "spec.hubTokenSecret is immutable once created") in failures(spec_schema(), new, old)
    assert ("", "spec.hubTokenSecret is immutable once created") in failures(spec_schema(), old, new)
    assert failures(spec_schema(), new) == []  # a create may set it


def _tolerations_refused(kind_file: str, tolerations: list[dict[str, Any]]) -> list[str]:
    (doc,) = yaml.safe_load_all((COMMITTED[1].parent / kind_file).read_text())
    schema = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec = {"resources": {"tolerations": tolerations}}
    return [m for _, m in failures(schema, spec)]


TOLERATIONS = [  # (toleration, a word of the CRD's message; None: valid)
    ({"operator": "Exists"}, None),
    ({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}, None),
    ({"key": "spot", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}, None),
    ({"key": "", "operator": "Exists", "value": ""}, None),
    ({"value": "x"}, "key is required"),
    ({"key": "", "operator": "Equal"}, "key is required"),
    ({"key": "gpu", "operator": "Exists", "value": "x"}, "value must be empty"),
    ({"key": "gpu", "tolerationSeconds": 5}, "NoExecute"),
    ({"key": "gpu", "effect": "PreferNoSchedule", "tolerationSeconds": 5}, "NoExecute"),
]


@pytest.mark.parametrize(("toleration", "word"), TOLERATIONS)
@pytest.mark.parametrize("kind_file", ["kubetune.io_finetuneruns.yaml", "kubetune.io_modelserves.yaml"])
def test_toleration_rules_agree_with_the_model(kind_file: str, toleration: dict[str, Any], word: str | None) -> None:
    """The API server's rules (CEL) and the operator's (Toleration) refuse the same tolerations."""
    from kubetune_operator.apitypes import Toleration

    messages = _tolerations_refused(kind_file, [toleration])
    try:
        Toleration.model_validate(toleration, by_name=False)
        model_refuses = False
    except ValueError:
        model_refuses = True
    assert model_refuses == (word is not None), toleration
    if word is None:
        assert messages == []
    else:
        assert len(messages) == 1 and word in messages[0], messages


def test_the_corpus_toleration_cases_are_refused_by_the_crd_too() -> None:
    corpus = Path(__file__).resolve().parents[1] / "fixtures" / "invalid-manifests"
    expected = yaml.safe_load((corpus / "expected.yaml").read_text())
    files = {"FineTuneRun": "kubetune.io_finetuneruns.yaml", "ModelServe": "kubetune.io_modelserves.yaml"}
    checked = 0
    for name, (field, word) in expected.items():
        if ".tolerations[" not in field or not any(w in word for w in ("required", "empty", "NoExecute")):
            continue
        (doc,) = yaml.safe_load_all((corpus / name).read_text())
        messages = _tolerations_refused(files[doc["kind"]], doc["spec"]["resources"]["tolerations"])
        assert messages, name
        checked += 1
    assert checked >= 4
