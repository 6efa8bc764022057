"""CRDs generated from each kind's pydantic models (the only place a schema is written).

`model_json_schema()` is made structural the way Kubernetes requires: `$defs` inlined, `anyOf[X, null]` ->
`nullable: true`, titles and `additionalProperties: false` dropped, free-form maps typed (map-key patterns are
the operator's to check), the kind's CEL rules added. `KINDS` lists every kind the operator serves; `scripts/gen_crds.py` writes one file each.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from .apitypes import GROUP, VERSION, ResourceKind
from .finetunerun.api import RESOURCE as FINETUNERUN
from .modelserve.api import RESOURCE as MODELSERVE

KINDS: tuple[ResourceKind, ...] = (FINETUNERUN, MODELSERVE)
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
    _map_values(node)
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


def _map_values(node: dict[str, Any]) -> None:
    """A typed map whose keys have a pattern (pydantic: `patternProperties`, `propertyNames`, neither allowed in
    a structural schema) -> its value schema as `additionalProperties`. The keys are left to the operator's
    check (it names the key) and to the API server's own when it gets the object the map lands in (a pod's
    nodeSelector, a PodMonitor's labels): a CEL `matches` over map keys has no length bound the API server's
    cost estimate can see, and clusters before Kubernetes 1.30 refuse such a CRD as over budget."""
    patterns = node.pop("patternProperties", None)
    node.pop("propertyNames", None)
    if patterns:
        if len(patterns) != 1 or "additionalProperties" in node:
            raise ValueError(f"cannot express map keys structurally: {patterns}")
        ((_, values),) = patterns.items()
        node["additionalProperties"] = values


def schema_of(model: type) -> dict[str, Any]:
    """A pydantic model's JSON schema as a structural schema (what a CRD carries for it)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(_inline(raw, defs))


def spec_schema(kind: ResourceKind) -> dict[str, Any]:
    schema = schema_of(kind.spec)
    kind.spec_rules(schema)
    return schema


def status_schema(kind: ResourceKind) -> dict[str, Any]:
    return schema_of(kind.status)


def metadata_schema(kind: ResourceKind) -> dict[str, Any]:
    """The kind's rule for its objects' names (a CRD may constrain metadata.name and nothing else of it)."""
    name = kind.manifest.model_fields["metadata"].annotation.model_json_schema()["properties"]["name"]
    return {"type": "object", "properties": {"name": {
        "type": "string", "maxLength": name["maxLength"], "pattern": name["pattern"]}}}


def crd(kind: ResourceKind) -> dict[str, Any]:
    """A kind's CustomResourceDefinition (apiextensions.k8s.io/v1) as a dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/part-of": "kubetune"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": kind.kind, "plural": kind.plural, "singular": kind.singular,
                      "listKind": f"{kind.kind}List", "shortNames": list(kind.short_names),
                      "categories": ["kubetune"]},
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [dict(c) for c in kind.printer_columns],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": kind.manifest.__doc__,
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string", "description": kind.api_version},
                        "kind": {"type": "string", "description": kind.kind},
                        "metadata": metadata_schema(kind),
                        "spec": spec_schema(kind),
                        # kopf keeps its own bookkeeping under status too (last-handled, errors):
                        # keep unknown status fields so those writes are not pruned.
                        "status": {**status_schema(kind), "x-kubernetes-preserve-unknown-fields": True},
                    },
                }},
            }],
        },
    }


def filename(kind: ResourceKind) -> str:
    return f"{GROUP}_{kind.plural}.yaml"


def render(kind: ResourceKind) -> str:
    header = (f"# Generated by scripts/gen_crds.py from the {kind.kind} models in operator/kubetune_operator/. "
              "Do not edit.\n")
    return header + yaml.safe_dump(crd(kind), sort_keys=False, width=110)


