"""What a Kubernetes API server does to a write before it stores it, for the emulator (`kmock_cluster`).

kopf's emulator stores whatever it is sent. A real API server, on every create, update and patch:

* decodes the body as Go does: NaN and Infinity are not JSON, so a body holding one cannot be read (400);
* for a custom resource, works from the CRD's structural schema: drops the nulls a field does not allow,
  prunes the fields the schema does not declare (silently; not under `x-kubernetes-preserve-unknown-fields`),
  applies the schema's defaults, then checks types, formats, enums, bounds, patterns, required fields,
  sizes and the `x-kubernetes-validations` CEL rules, the transition rules (`oldSelf`) on an update;
* checks a built-in kind against Kubernetes' OpenAPI schema (the `kubernetes-validate` package's, unknown
  fields refused: a real server drops them with a warning, and a field the operator sets that Kubernetes
  does not know is a bug either way) and every object's name and labels;
* on an update, lets an invalid value that the write did not change stand (CRD validation ratcheting, on by
  default since Kubernetes 1.30): only what a write changes must be valid;
* refuses a write with any invalid part whole: 422 Invalid, a Status naming every field, nothing stored.

Which half of an object a write may change (the status subresource) and the metadata the server sets are
the emulator's part (`kmock_cluster.StrictEmulator`); this module is pure.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import celpy
import jsonschema
import kubernetes_validate
import referencing
from kubernetes_validate import utils as kv_utils

FieldPath = tuple[str | int, ...]  # keys and list indices from the object root
_MISSING = object()


@dataclass(frozen=True)
class Cause:
    """One refused field, as a Status' `details.causes` entry."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"


@dataclass
class Refused(Exception):
    """A write the API server does not accept; `status_body()` is what it answers."""

    code: int
    reason: str
    message: str
    causes: list[Cause] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message

    def details(self, kind: str, group: str, name: str | None) -> dict[str, Any]:
        return {"name": name or "", "group": group, "kind": kind,
                "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in self.causes]}


def invalid(kind: str, group: str, name: str | None, causes: list[Cause]) -> Refused:
    qualified = f"{kind}.{group}" if group else kind
    listed = "; ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    return Refused(422, "Invalid", f"{qualified} {json.dumps(name or '')} is invalid: {listed}", causes)


def field_path(path: FieldPath) -> str:
    """('spec', 'stages', 0, 'name') -> 'spec.stages[0].name', as the API server names fields."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shown(value: Any) -> str:
    text = json.dumps(value, allow_nan=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------- decoding

def decode(body: bytes) -> Any:
    """A request body as the API server's decoder reads it; NaN, Infinity and numbers too large for a float64
    are not JSON and make the body unreadable (400 BadRequest, naming where)."""
    value = json.loads(body) if body else None
    bad = [p for p, v in _walk(value) if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        where = ", ".join(field_path(p) or "(the body)" for p in bad)
        raise Refused(400, "BadRequest", f"the body of the request cannot be decoded: not JSON: a non-finite number "
                                         f"(NaN or Infinity) at {where}",
                      [Cause(field_path(p), "not a JSON number", "FieldValueInvalid") for p in bad])
    return value


def _walk(value: Any, path: FieldPath = ()) -> Iterator[tuple[FieldPath, Any]]:
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, (*path, i))


# ---------------------------------------------------------------- patches

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what kmock and the API server apply; a strategic merge patch of the kinds
    written here is one too)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def at(value: Any, path: FieldPath) -> Any:
    """The value at `path`, or _MISSING."""
    for part in path:
        if isinstance(part, int) and isinstance(value, list) and 0 <= part < len(value):
            value = value[part]
        elif isinstance(part, str) and isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def ratcheted(path: FieldPath, new: Any, old: Any) -> bool:
    """Whether a problem at `path` is in a value the update did not change (so it stands). Values correlate
    through object keys; inside a changed list nothing correlates (as the API server has it for atomic lists)."""
    if old is _MISSING:
        return False
    for depth in range(len(path) + 1):
        before = at(old, path[:depth])
        if before is _MISSING:
            return False
        if before == at(new, path[:depth]):
            return True
        if depth < len(path) and isinstance(path[depth], int):
            return False
    return False


# ---------------------------------------------------------------- custom resources

def _nullable(check: Callable[..., Any]) -> Callable[..., Iterator[jsonschema.ValidationError]]:
    """OpenAPI v3.0's `nullable: true`: null passes every keyword of that schema."""
    def run(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
        if instance is None and schema.get("nullable"):
            return
        yield from check(validator, value, instance, schema) or ()
    return run


# A CRD schema is OpenAPI v3.0: JSON-schema draft 4 (boolean exclusiveMinimum/Maximum) plus `nullable`;
# the x-kubernetes-* keywords are not JSON-schema's and are done here.
_OpenAPIValidator = jsonschema.validators.extend(
    jsonschema.Draft4Validator,
    {name: _nullable(check) for name, check in jsonschema.Draft4Validator.VALIDATORS.items()})

_CEL = celpy.Environment()


@functools.cache
def _cel_program(rule: str) -> Any:
    return _CEL.program(_CEL.compile(rule))


def _messages(error: jsonschema.ValidationError) -> list[tuple[FieldPath, str]]:
    """A jsonschema error -> (path, message) in the API server's words, one per field."""
    path: FieldPath = tuple(error.absolute_path)
    if error.validator == "required":
        return [((*path, p), "Required value") for p in error.validator_value if p not in (error.instance or {})]
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = error.schema.get("properties") or {}
        return [((*path, k), f"unknown field {json.dumps(k)}") for k in error.instance if k not in known]
    if error.validator == "enum":
        return [(path, f"Unsupported value: {_shown(error.instance)}: supported values: " + ", ".join(
            _shown(v) for v in error.validator_value))]
    if error.validator in ("maxLength", "maxItems", "maxProperties"):
        return [(path, f"Too long: may have at most {error.validator_value} " + {
            "maxLength": "characters", "maxItems": "items", "maxProperties": "properties"}[error.validator])]
    return [(path, f"Invalid value: {_shown(error.instance)}: {error.message}")]


class CustomResourceSchema:
    """One version of a CRD: its structural schema (`openAPIV3Schema`) and what the API server does with it."""

    def __init__(self, kind: str, group: str, schema: dict[str, Any]) -> None:
        self.kind, self.group, self.schema = kind, group, schema
        _OpenAPIValidator.check_schema(schema)
        self._validator = _OpenAPIValidator(schema, format_checker=jsonschema.FormatChecker())

    def admit(self, new: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
        """The object as stored (pruned, defaulted), or `Refused`: what an API server does with a create
        (`old` None) or with the object an update would leave."""
        obj = default(self.schema, prune(self.schema, new))
        # The old object is read from storage as the schema has it too (pruned, defaulted).
        before = _MISSING if old is None else default(self.schema, prune(self.schema, old))
        problems = [m for e in self._validator.iter_errors(obj) for m in _messages(e)]
        problems += cel_failures(self.schema, obj, before)
        causes = [Cause(field_path(p), m) for p, m in problems if not ratcheted(p, obj, before)]
        if causes:
            raise invalid(self.kind, self.group, (obj.get("metadata") or {}).get("name"), causes)
        return obj


def _preserves(schema: dict[str, Any]) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


def prune(schema: dict[str, Any], value: Any, root: bool = True) -> Any:
    """Drop what the schema does not declare, and the nulls of fields that are not nullable (the API server
    drops those before defaulting). `metadata` is the server's own (ObjectMeta) and is left as it is."""
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            sub = props.get(key) if key in props else (extra if isinstance(extra, dict) else None)
            if root and key in ("apiVersion", "kind", "metadata"):
                out[key] = item
            elif sub is not None:
                if item is None and not sub.get("nullable"):
                    continue
                out[key] = prune(sub, item, root=False)
            elif _preserves(schema):
                out[key] = item
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(schema["items"], item, root=False) for item in value]
    return value


def default(schema: dict[str, Any], value: Any) -> Any:
    """Fill each absent field that has a default, where its parent exists."""
    if isinstance(value, dict) and schema.get("type") == "object":
        out = dict(value)
        props = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
        for key, item in out.items():
            sub = props.get(key) if key in props else schema.get("additionalProperties")
            if isinstance(sub, dict):
                out[key] = default(sub, item)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [default(schema["items"], item) for item in value]
    return value


def cel_failures(schema: dict[str, Any], new: Any, old: Any = _MISSING,
                 path: FieldPath = ()) -> list[tuple[FieldPath, str]]:
    """(path, message) of every `x-kubernetes-validations` rule that does not hold. A rule over a value the
    update did not change is not run (ratcheting); a transition rule (`oldSelf`) runs only where the old
    value correlates (through object keys and map values, not list items)."""
    out: list[tuple[FieldPath, str]] = []
    unchanged = old is not _MISSING and old == new
    for rule in [] if unchanged else schema.get("x-kubernetes-validations") or []:
        activation = {"self": celpy.json_to_cel(new)}
        if "oldSelf" in rule["rule"]:
            if old is _MISSING:
                continue
            activation["oldSelf"] = celpy.json_to_cel(old)
        try:
            result = _cel_program(rule["rule"]).evaluate(activation)
        except celpy.CELEvalError as exc:
            result = exc
        if isinstance(result, celpy.CELEvalError):
            out.append((path, f"Invalid value: {_shown(new)}: rule {rule['rule']!r} could not be evaluated: "
                              f"{result.args[0] if result.args else result}"))
        elif not result:
            out.append((path, f"Invalid value: {_shown(new)}: {rule.get('message') or rule['rule']}"))
    if unchanged:
        return out
    if isinstance(new, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in new.items():
            sub = props.get(key) if key in props else (extra if isinstance(extra, dict) else None)
            if sub is not None:
                prior = old.get(key, _MISSING) if isinstance(old, dict) else _MISSING
                out += cel_failures(sub, item, prior, (*path, key))
    elif isinstance(new, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(new):
            out += cel_failures(schema["items"], item, _MISSING, (*path, i))
    return out


def crd_version_schema(crd: dict[str, Any], version: str) -> dict[str, Any]:
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return served["schema"]["openAPIV3Schema"]


# ---------------------------------------------------------------- built-in kinds

K8S_VERSION = kubernetes_validate.latest_version()


@functools.cache
def _builtin_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    """Kubernetes' OpenAPI schema of a built-in kind (kubernetes-validate's files, the strict set), or None
    when it has none (a CRD's kind: PodMonitor, ScaledObject, JobSet)."""
    directory = f"kubernetes-json-schema/v{K8S_VERSION}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # kubernetes-validate's file naming
    try:
        schema = kv_utils.schema_contents(f"{directory}/{kind.lower()}-{group_version}.json", K8S_VERSION)
    except FileNotFoundError:
        return None
    definitions = kv_utils.schema_contents(f"{directory}/_definitions.json", K8S_VERSION)
    # Both files carry their $id, as kubernetes-validate registers them.
    registry = referencing.Resource.from_contents(definitions) @ (
        referencing.Resource.from_contents(schema) @ referencing.Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def has_builtin_schema(api_version: str, kind: str) -> bool:
    return _builtin_validator(api_version, kind) is not None


def admit_builtin(new: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    """A built-in object as its kind's OpenAPI schema checks it (every field the write changed)."""
    api_version, kind = str(new.get("apiVersion", "")), str(new.get("kind", ""))
    validator = _builtin_validator(api_version, kind)
    if validator is None:
        return new
    before = _MISSING if old is None else old
    problems = [m for e in validator.iter_errors(new) for m in _messages(e)]
    causes = [Cause(field_path(p), m) for p, m in problems if not ratcheted(p, new, before)]
    if causes:
        group = api_version.rpartition("/")[0]
        raise invalid(kind, group, (new.get("metadata") or {}).get("name"), causes)
    return new


# ---------------------------------------------------------------- metadata (every kind)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAME63 = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_ANNOTATIONS_MAX = 256 * 1024


def _name_problem(kind: str, name: str) -> str | None:
    if kind == "Service":  # a Service's name is a DNS-1035 label (it becomes a DNS name)
        return None if len(name) <= 63 and _DNS_1035.match(name) else \
            "a DNS-1035 label: at most 63 lowercase letters, digits and '-', starting with a letter"
    if kind == "Job" and len(name) > 63:  # it becomes the value of the Job's pods' job-name label
        return "at most 63 characters"
    if kind == "Namespace":
        return None if len(name) <= 63 and _DNS_LABEL.match(name) else "a DNS label"
    return None if len(name) <= 253 and _SUBDOMAIN.match(name) else \
        "a DNS subdomain: lowercase letters, digits, '-' and '.', at most 253"


def _qualified_name_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
        return "the prefix must be a DNS subdomain"
    if not _NAME63.match(name):
        return "a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
    return None


def metadata_causes(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Cause]:
    """The API server's checks of ObjectMeta: the name's syntax per kind, label keys and values, annotation
    keys and total size. Labels and annotations an update did not change stand."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [Cause("metadata", "Required value")]
    out = []
    name = meta.get("name")
    if not name:
        out.append(Cause("metadata.name", "Required value: name or generateName is required"))
    elif (problem := _name_problem(str(obj.get("kind")), str(name))) is not None:
        out.append(Cause("metadata.name", f"Invalid value: {_shown(name)}: must be {problem}"))
    before = (old or {}).get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels != before.get("labels"):
        for key, value in labels.items():
            if (problem := _qualified_name_problem(str(key))) is not None:
                out.append(Cause("metadata.labels", f"Invalid value: {_shown(key)}: {problem}"))
            if not isinstance(value, str) or (value and not _NAME63.match(value)):
                out.append(Cause(f"metadata.labels.{key}", f"Invalid value: {_shown(value)}: a label value: empty "
                                 "or at most 63 letters, digits, '-', '_' and '.', starting and ending with a "
                                 "letter or digit"))
    annotations = meta.get("annotations") or {}
    if annotations != before.get("annotations"):
        for key in annotations:
            if (problem := _qualified_name_problem(str(key))) is not None:
                out.append(Cause("metadata.annotations", f"Invalid value: {_shown(key)}: {problem}"))
        size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
        if size > _ANNOTATIONS_MAX:
            out.append(Cause("metadata.annotations", f"Too long: must have at most {_ANNOTATIONS_MAX} bytes"))
    return out
