"""The generated CRD: structural, documented, with CEL rules and printer columns; the committed YAML is
exactly what the models generate; the reference manifest validates against its schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml
from test_operator_api import EXAMPLE

from kubetune_operator import apitypes, crd
from kubetune_operator.finetunerun import api

KIND = api.RESOURCE

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = [ROOT / "manifests" / "crds" / crd.filename(KIND), ROOT / "charts" / "kubetune" / "crds" / crd.filename(KIND)]


def schema() -> dict:
    return crd.crd(KIND)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def walk(node, path="$"):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")


def test_committed_yaml_matches_the_models() -> None:
    text = crd.render(KIND)
    for path in COMMITTED:
        assert path.exists(), f"{path} missing: run scripts/gen_crds.py"
        assert path.read_text() == text, f"{path} is stale: run scripts/gen_crds.py"
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_crds.py"), "--check"], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stderr


def test_schema_is_structural() -> None:
    for path, node in walk(schema()):
        for banned in ("$ref", "anyOf", "oneOf", "allOf", "$defs", "title", "uniqueItems", "const"):
            assert banned not in node or path.endswith(".properties"), f"{banned} at {path}"
        assert node.get("additionalProperties") is not False, path
        if "properties" in node and not path.endswith(".properties"):
            assert node.get("type") == "object", path
        if node.get("type") == "array":
            assert "items" in node, path


def test_every_spec_field_is_documented() -> None:
    spec = schema()["properties"]["spec"]
    undocumented = [p for p, node in walk(spec)
                    if "type" in node and not node.get("description") and ".items" not in p[-6:]
                    and not p.endswith("additionalProperties") and not p.endswith(".items")]
    assert undocumented == []


def test_validation_rules_bounds_and_columns() -> None:
    s = schema()
    spec = s["properties"]["spec"]
    stages = spec["properties"]["stages"]
    rules = [r["rule"] for r in stages["x-kubernetes-validations"]]
    assert any("exists_one" in r for r in rules) and "size(self) >= 1" in rules
    assert stages["minItems"] == 1 and stages["maxItems"] == 8
    for name in api.IMMUTABLE_SPEC_FIELDS:
        assert {"self == oldSelf"} <= {r["rule"] for r in spec["properties"][name]["x-kubernetes-validations"]}
    assert "x-kubernetes-validations" not in spec["properties"]["resources"]  # scheduling stays mutable
    fmt = stages["items"]["properties"]["dataset"]["properties"]["format"]
    assert fmt["enum"] == ["ultrachat", "xlam"]
    assert spec["properties"]["lora"]["properties"]["r"] == {
        "default": 16, "description": "LoRA rank.", "maximum": 512, "minimum": 1, "type": "integer"}
    assert spec["properties"]["training"]["default"]["batchSize"] == 4
    assert spec["properties"]["baseModel"]["default"] == "Qwen/Qwen2.5-3B"
    assert s["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True
    version = crd.crd(KIND)["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Phase", "Stage", "Progress", "Loss", "Accuracy", "Age"]


def test_crd_object_validates_against_kubernetes() -> None:
    kubernetes_validate.validate(crd.crd(KIND), kubernetes_validate.latest_version(), strict=True)


def _as_jsonschema(node):
    """OpenAPI `nullable` -> JSON-schema type lists; drop Kubernetes extensions and `default`."""
    if isinstance(node, list):
        return [_as_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _as_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes") and k != "nullable"}
    if node.get("nullable"):
        out["type"] = [node["type"], "null"]
    return out


def test_reference_manifest_validates_against_the_crd_schema() -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    validator = jsonschema.Draft4Validator(_as_jsonschema(schema()))  # OpenAPI v3.0 bounds are draft-4 style
    validator.validate(doc)
    bad = yaml.safe_load(EXAMPLE.read_text())
    bad["spec"]["lora"]["r"] = 0
    try:
        validator.validate(bad)
    except jsonschema.ValidationError as exc:
        assert list(exc.absolute_path) == ["spec", "lora", "r"]
    else:
        raise AssertionError("lora.r = 0 passed the CRD schema")


def test_map_key_patterns_stay_out_of_the_schema_and_values_keep_theirs() -> None:
    """A structural schema has no patternProperties/propertyNames: a label map's keys are the operator's to check
    (crd._map_values), its values keep their pattern in additionalProperties."""
    for kind in crd.KINDS:
        spec = crd.crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        for path, node in walk(spec):
            assert "patternProperties" not in node and "propertyNames" not in node, (kind.kind, path)
        selector = spec["properties"]["resources"]["properties"]["nodeSelector"]
        assert selector["type"] == "object" and selector["maxProperties"] == 32
        assert selector["additionalProperties"]["pattern"] == apitypes.LABEL_VALUE
