"""FineTuneRun CRD generated from the pydantic models in `api.py` (the only place the schema is written).

`model_json_schema()` is made structural the way Kubernetes requires: `$defs` inlined, `anyOf[X, null]` ->
`nullable: true`, titles and `additionalProperties: false` dropped, free-form maps typed, CEL rules added.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from . import api

# Fields that shape the artifacts: immutable once created (see api.py's restart semantics).
IMMUTABLE_SPEC_FIELDS = ("baseModel", "storage", "stages", "lora", "training", "evaluation", "hubTokenSecret")
_DROP = {"title", "additionalProperties", "examples"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].split("/")[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        target.update(extra)  # a field's own description/default win over the definition's docstring
        return _inline(target, defs)
    return {k: _inline(v, defs) for k, v in node.items()}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _structural(node: Any) -> Any:
    """Rewrite one inlined JSON-schema node into a Kubernetes structural-schema node."""
    if isinstance(node, list):
        return [_structural(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    for variants in ("anyOf", "oneOf"):
        if variants in node:
            options = node.pop(variants)
            non_null = [o for o in options if o.get("type") != "null"]
            if len(non_null) != 1:
                raise ValueError(f"cannot express a union of {len(non_null)} types structurally: {options}")
            merged = dict(non_null[0])
            merged.update(node)
            node = merged
            if len(non_null) < len(options):
                node["nullable"] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    # JSON-schema 2020 numeric exclusive bounds -> OpenAPI v3.0 (bound + boolean flag).
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(exclusive), int | float) and not isinstance(node.get(exclusive), bool):
            node[bound] = node.pop(exclusive)
            node[exclusive] = True
    additional = node.get("additionalProperties")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value)
        elif key == "default":
            if value is not None:
                out[key] = _without_nulls(value)
        else:
            out[key] = value
    if out.get("type") == "object" and isinstance(additional, dict):
        out["additionalProperties"] = _structural(additional)  # typed maps (nodeSelector, minAccuracy)
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return out


def _schema_of(model: type) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(_inline(raw, defs))


def spec_schema() -> dict[str, Any]:
    schema = _schema_of(api.FineTuneRunSpec)
    stages = schema["properties"]["stages"]
    stages["x-kubernetes-validations"] = [
        {"rule": "self.all(s, self.exists_one(t, t.name == s.name))", "message": "stage names must be unique"},
        {"rule": "size(self) >= 1", "message": "at least one stage is required"},
    ]
    for name in IMMUTABLE_SPEC_FIELDS:
        prop = schema["properties"][name]
        prop.setdefault("x-kubernetes-validations", []).append(
            {"rule": "self == oldSelf",
             "message": f"spec.{name} is immutable once created; create a new FineTuneRun to change it"})
    # CEL cannot compare a field that is absent on one side: removing or adding an optional immutable field
    # is caught on the whole spec.
    schema["x-kubernetes-validations"] = [
        {"rule": "has(self.hubTokenSecret) == has(oldSelf.hubTokenSecret)",
         "message": "spec.hubTokenSecret is immutable once created"},
    ]
    return schema


def status_schema() -> dict[str, Any]:
    return _schema_of(api.FineTuneRunStatus)


def crd() -> dict[str, Any]:
    """The FineTuneRun CustomResourceDefinition (apiextensions.k8s.io/v1) as a dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{api.PLURAL}.{api.GROUP}",
                     "labels": {"app.kubernetes.io/part-of": "kubetune"}},
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {"kind": api.KIND, "plural": api.PLURAL, "singular": api.SINGULAR,
                      "listKind": f"{api.KIND}List", "shortNames": api.SHORT_NAMES,
                      "categories": ["kubetune"]},
            "versions": [{
                "name": api.VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Stage", "type": "string", "jsonPath": ".status.currentStage"},
                    {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
                    {"name": "Loss", "type": "number", "jsonPath": ".status.loss"},
                    {"name": "Accuracy", "type": "number", "jsonPath": ".status.accuracy"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": api.FineTuneRun.__doc__,
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string", "description": "kubetune.io/v1alpha1"},
                        "kind": {"type": "string", "description": "FineTuneRun"},
                        "metadata": {"type": "object"},
                        "spec": spec_schema(),
                        # kopf keeps its own bookkeeping under status too (last-handled, errors):
                        # keep unknown status fields so those writes are not pruned.
                        "status": {**status_schema(), "x-kubernetes-preserve-unknown-fields": True},
                    },
                }},
            }],
        },
    }


def render() -> str:
    header = "# Generated by scripts/gen_crds.py from operator/kubetune_operator/api.py. Do not edit.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=110)


CRD_FILENAME = "kubetune.io_finetuneruns.yaml"
