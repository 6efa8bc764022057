"""What every kubetune.io/v1alpha1 resource shares: the group, the pydantic base of the typed specs, the
syntax of Kubernetes names, labels and image references (patterns the CRD's schema carries too, map keys
aside), the spec types two kinds use (storage, tolerations, conditions), error messages that name the field,
and `ResourceKind`, the description of a kind that the CRD generator and the Kubernetes layer work from.

Each kind's own models live in its package (`finetunerun.api`, `modelserve.api`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

GROUP = "kubetune.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# What each pattern means, in words: a mismatch says so after pydantic's "String should match pattern".
SYNTAX: dict[str, str] = {}


def syntax(regex: str, meaning: str) -> str:
    """Register a field pattern with its meaning (for error messages); returns the pattern."""
    SYNTAX[regex] = meaning
    return regex


# The patterns are RE2-compatible (the API server's engine and pydantic's): no look-arounds, no backreferences.
DNS_LABEL = syntax(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                   "a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit")
# What a Service may be named (RFC 1035): a DNS label that starts with a letter.
DNS_1035_LABEL = syntax(r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
                        "a DNS-1035 label: lowercase letters, digits and '-', starting with a letter and ending "
                        "with a letter or digit")
_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
# A DNS subdomain (RFC 1123): what Secret, PriorityClass and most object names may be (dots allowed).
DNS_SUBDOMAIN = syntax(f"^{_SUBDOMAIN}$", "a DNS subdomain: DNS labels (lowercase letters, digits and '-') "
                                          "joined by '.'")
QUANTITY = syntax(r"^([0-9]+(\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$",
                  "a Kubernetes quantity such as 500m, 8, 1.5, 32Gi")
_NAME63 = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = f"({_SUBDOMAIN}/)?{_NAME63}"
_LABEL_KEY_MEANING = ("an optional DNS-subdomain prefix and '/', then a name of at most 63 letters, digits, "
                      "'-', '_' and '.', starting and ending with a letter or digit")
# A qualified name (label keys, taint keys, node-selector keys).
LABEL_KEY = syntax(f"^{_LABEL_KEY}$", "a label key: " + _LABEL_KEY_MEANING)
TAINT_KEY = syntax(f"^({_LABEL_KEY})?$", f"a taint key: empty, or a label key ({_LABEL_KEY_MEANING})")
LABEL_VALUE = syntax(f"^({_NAME63})?$", "a label value: empty, or at most 63 letters, digits, '-', '_' and '.', "
                                        "starting and ending with a letter or digit")
LABEL_KEY_MAX = 253 + 1 + 63  # prefix, '/', name
_PATH_COMPONENT = r"[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*"
_HOST_COMPONENT = r"([a-zA-Z0-9]|[a-zA-Z0-9][-a-zA-Z0-9]*[a-zA-Z0-9])"
# A registry host has a dot or a port, or is localhost (else the first component is part of the repository).
_REGISTRY = (rf"({_HOST_COMPONENT}(\.{_HOST_COMPONENT})+(:[0-9]+)?|{_HOST_COMPONENT}:[0-9]+|localhost)/")
IMAGE = syntax(rf"^({_REGISTRY})?{_PATH_COMPONENT}(/{_PATH_COMPONENT})*"
               r"((:[A-Za-z0-9_][-A-Za-z0-9_.]{0,127})(@sha256:[a-f0-9]{64})?|@sha256:[a-f0-9]{64})$",
               "an image reference [registry/]repository:tag or [registry/]repository@sha256:<64 hex digits> "
               "(the repository in lowercase; a tag or a digest is required)")
# A key of a Secret or ConfigMap (a file name when mounted): never '.' nor a '..' path step.
SECRET_KEY = syntax(r"^\.?[-_a-zA-Z0-9][-._a-zA-Z0-9]*$",
                    "a Secret key: letters, digits, '-', '_' and '.', neither '.' nor starting with '..'")
# A Hugging Face Hub repository id, [owner/]name: letters, digits and '_', joined by single '-' or '.'.
_HUB_PART = r"[A-Za-z0-9_]([-.]?[A-Za-z0-9_])*"
HUB_ID = syntax(f"^({_HUB_PART}/)?{_HUB_PART}$",
                "a Hub model id [owner/]name: letters, digits and '_', joined by single '-' or '.' (no '..')")
# An S3 object or prefix: s3://bucket[/key], the bucket named as S3 allows.
S3_URI = syntax(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
                "an S3 URI s3://bucket[/key], the bucket 3 to 63 lowercase letters, digits, '.' and '-'")
DEFAULT_JOBS_IMAGE = "ghcr.io/kubetune/kubetune-jobs:0.1.0"
ANNOTATIONS_MAX_BYTES = 256 * 1024  # the API server's limit on all of an object's annotation keys and values


M = TypeVar("M", bound=BaseModel)


class SpecError(ValueError):
    """A manifest or spec that does not validate; the message names the field, one line per problem."""


class Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors (typos must not pass), and
    types are strict as the API server's are: "0" is not a number, "yes" not a boolean, 4.0 not an integer."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              validate_default=True, strict=True)

    def wire(self) -> dict[str, Any]:
        """The object as it appears in a manifest (camelCase, no unset optionals)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def described(default: Any = ..., description: str = "", **kw: Any) -> Any:
    """A model field with its documentation (every field has one: it becomes the CRD's description)."""
    return Field(default, description=description, **kw)


_f = described


class FieldError(ValueError):
    """Raised by a model's validator about one of the model's own fields (`field`, camelCase): the message
    then names that field, `spec.resources.tolerations[0].value: ...`, not just the model."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _prefix_fits(key: str) -> str:
    prefix, _, _ = key.rpartition("/")
    if len(prefix) > 253:
        raise ValueError(f"the prefix before '/' has {len(prefix)} characters; at most 253")
    return key


# As a map's key, the pattern is checked here and not in the CRD (see `crd._map_values`).
LabelKey = Annotated[str, Field(min_length=1, max_length=LABEL_KEY_MAX, pattern=LABEL_KEY),
                     AfterValidator(_prefix_fits)]
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]
# A label map (nodeSelector, extra labels): label keys to label values, as Kubernetes checks them.
Labels = dict[LabelKey, LabelValue]


class StorageSpec(Model):
    """Where artifacts live: an S3-compatible object store (MinIO or any S3 API)."""

    endpoint: str | None = _f(None, "URL of the S3 API (http(s)://host:port). Empty: the operator's "
                              "configured store (Helm value storage.endpoint).", max_length=512)
    bucket: str = _f("kubetune", "Bucket holding `<namespace>/<run>/...` artifacts.",
                     min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    credentials_secret: str | None = _f(None, "Secret in the resource's namespace with keys AWS_ACCESS_KEY_ID "
                                        "and AWS_SECRET_ACCESS_KEY; injected into pods by reference only.",
                                        max_length=253, pattern=DNS_SUBDOMAIN)
    secure: bool = _f(False, "Use TLS when `endpoint` has no scheme.")


# The API server's checks of a toleration (core/v1), as CEL on the schema; `Toleration._consistent` makes the
# same three, naming the field. The operator's default is Equal when unset.
_EXISTS = "has(self.operator) && self.operator == 'Exists'"
TOLERATION_RULES = [
    {"rule": f"(has(self.key) && size(self.key) > 0) || ({_EXISTS})",
     "message": "key is required unless operator is Exists"},
    {"rule": f"!has(self.value) || size(self.value) == 0 || !({_EXISTS})",
     "message": "value must be empty when operator is Exists"},
    {"rule": "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
     "message": "tolerationSeconds applies only to effect NoExecute"},
]


class Toleration(Model):
    """A pod toleration (core/v1 Toleration)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": TOLERATION_RULES})

    key: str | None = _f(None, "Taint key (a label key); empty with operator Exists tolerates every taint.",
                         max_length=LABEL_KEY_MAX, pattern=TAINT_KEY)
    operator: Literal["Exists", "Equal"] = _f("Equal", "Exists matches any value.")
    value: str | None = _f(None, "Taint value (a label value; Equal only).", max_length=63, pattern=LABEL_VALUE)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = _f(None, "Taint effect (all if unset).")
    toleration_seconds: int | None = _f(None, "How long a NoExecute taint is tolerated.", ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if not self.key and self.operator != "Exists":
            raise FieldError("key", "required unless operator is Exists (an empty key with Exists tolerates "
                                    "every taint)")
        if self.value and self.operator == "Exists":
            raise FieldError("value", "must be empty when operator is Exists (Exists matches any value)")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise FieldError("tolerationSeconds", "applies only to effect NoExecute (a taint that evicts)")
        return self


class Condition(Model):
    """A Kubernetes-convention condition."""

    type: str = _f(..., "Condition type (e.g. Succeeded, Ready, Progressing, Degraded).", max_length=64)
    status: Literal["True", "False", "Unknown"] = _f(..., "True, False or Unknown.")
    reason: str = _f(..., "CamelCase machine-readable reason.", max_length=128)
    message: str = _f("", "Human-readable detail.", max_length=4096)
    last_transition_time: str | None = _f(None, "When status last changed (RFC 3339).")
    observed_generation: int | None = _f(None, "metadata.generation this condition describes.")


def _annotation_key(key: str) -> str:
    # The API server checks an annotation key as a label key after lower-casing it.
    if not re.fullmatch(LABEL_KEY, key.lower()):
        raise ValueError(f"{shown(key)} is not an annotation key: {_LABEL_KEY_MEANING} (any case)")
    return _prefix_fits(key)


AnnotationKey = Annotated[str, Field(min_length=1, max_length=LABEL_KEY_MAX), AfterValidator(_annotation_key)]


class OwnerReference(Model):
    """An owner of the object (meta/v1 OwnerReference), as a manifest exported from a cluster carries it."""

    api_version: str = Field(..., min_length=1)
    kind: str = Field(..., min_length=1)
    name: str = Field(..., min_length=1)
    uid: str = Field(..., min_length=1)
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(Model):
    """metadata, checked as the API server checks it: a map of strings is a map of strings, a key is a
    qualified name, the annotations fit in 256 KiB, and a field Kubernetes' ObjectMeta lacks is an error (as
    `kubectl apply` says, unknown field). The name is a DNS label (not a subdomain): it names Jobs, Services
    and label values. The namespace also names a local run's directory: its pattern keeps that path inside
    the store."""

    name: str = Field(..., max_length=63, pattern=DNS_LABEL)
    namespace: str = Field("default", max_length=63, pattern=DNS_LABEL)
    labels: Labels = Field({}, max_length=64)
    annotations: dict[AnnotationKey, str] = {}
    finalizers: list[Annotated[str, Field(min_length=1, max_length=LABEL_KEY_MAX, pattern=LABEL_KEY),
                          AfterValidator(_prefix_fits)]] = []
    owner_references: list[OwnerReference] = []
    # Written by the API server; a manifest exported from a cluster carries them. Accepted, never used.
    generate_name: str | None = Field(None, max_length=63)
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    self_link: str | None = None
    managed_fields: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _as_the_api_server(self) -> ObjectMeta:
        size = sum(len(k.encode()) + len(v.encode()) for k, v in self.annotations.items())
        if size > ANNOTATIONS_MAX_BYTES:
            raise FieldError("annotations", f"keys and values take {size} bytes; at most {ANNOTATIONS_MAX_BYTES} "
                                            "(256 KiB)")
        if sum(1 for r in self.owner_references if r.controller) > 1:
            raise FieldError("ownerReferences", "at most one reference may be the controller")
        return self


_TAGS = ("function-after", "function-before", "function-wrap", "function-plain")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_][-A-Za-z0-9_./]{0,63}$")
SHOWN_MAX = 64  # a pasted 100 kB key is shown by its start and its length


def _clip(text: str) -> str:
    return text if len(text) <= SHOWN_MAX else f"{text[:SHOWN_MAX - 24]}…({len(text)} characters)"


def _key(part: Any) -> str:
    """One map key of a field path: `.name` when plain, else quoted (`["[/x]"]`: markup, controls, dots)."""
    if isinstance(part, str) and _PLAIN_KEY.match(part):
        return f".{part}"
    return f"[{_quoted(_clip(part)) if isinstance(part, str) else json.dumps(part, default=str)}]"


def _quoted(text: str) -> str:
    """A JSON string literal with every unprintable character (controls, bidi overrides) escaped."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in json.dumps(text, ensure_ascii=False))


def shown(value: Any) -> str:
    """A user's value in a message: quoted, control characters escaped, long ones clipped."""
    text = repr(value)
    if len(text) <= SHOWN_MAX:
        return text
    if isinstance(value, str):
        return f"{value[:SHOWN_MAX - 24]!r}…({len(value)} characters)"
    return text[:SHOWN_MAX - 1] + "…"


def field_path(loc: tuple[str | int, ...], root: str = "spec", doc: Any = None) -> str:
    """pydantic error location -> `spec.stages[1].dataset.format` (camelCase, as in the manifest).

    With the document, each step is matched against it: a key the manifest has is named as written (even
    `[/x]`), and what is not in it is either pydantic's own tag (`function-after[...]`, `[key]`: skipped)
    or a missing field."""
    out = root
    node = doc
    for part in loc:
        if isinstance(node, Mapping) and part in node:
            out += _key(part)
            node = node[part]
        elif isinstance(node, list | tuple) and isinstance(part, int) and 0 <= part < len(node):
            out += f"[{part}]"
            node = node[part]
        elif isinstance(part, int):
            out += f"[{part}]"
            node = None
        elif part in _TAGS or "[" in part:
            continue
        else:
            out += _key(to_camel(part) if "_" in part else part)
            node = None
    return out.lstrip(".")


def format_errors(exc: ValidationError, root: str = "spec", doc: Any = None) -> str:
    """One `field: problem` per error, `; `-joined; patterns are said in words with the value given."""
    lines = []
    for err in exc.errors():
        path = field_path(err["loc"], root, doc)
        msg = err["msg"].removeprefix("Value error, ")
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, FieldError):
            path = f"{path}.{error.field}".lstrip(".")
        if err["type"] == "string_pattern_mismatch":
            meaning = SYNTAX.get(err["ctx"]["pattern"])
            msg = (f"{shown(err['input'])} does not match the pattern of {meaning}" if meaning
                   else f"{msg}, got {shown(err['input'])}")
        lines.append(f"{path}: {msg}")
    return "; ".join(lines)


def read_status(model: type[M], raw: Mapping[str, Any] | None) -> M:
    """A status as stored, read field by field: one that does not validate (written by an older operator, or
    by anyone allowed to write the status subresource) falls back to its default instead of failing the whole
    read, so the next reconcile rewrites it; keys the model does not declare (kopf's own) are ignored."""
    raw = raw if isinstance(raw, Mapping) else {}
    good: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key not in raw:
            continue
        try:
            model.model_validate({key: raw[key]}, by_alias=True, by_name=False)
        except ValidationError:
            continue
        good[key] = raw[key]
    return model.model_validate(good, by_alias=True, by_name=False)


@dataclass(frozen=True)
class ResourceKind:
    """One custom resource kind: its names, typed models, printer columns and extra CEL rules."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec: type[Model]
    status: type[Model]
    manifest: type[BaseModel]
    printer_columns: tuple[dict[str, str], ...]
    # Adds x-kubernetes-validations to the generated spec schema (in place).
    spec_rules: Callable[[dict[str, Any]], None] = field(default=lambda schema: None)

    @property
    def api_version(self) -> str:
        return API_VERSION

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def status_keys(self) -> frozenset[str]:
        """The status fields the operator owns (camelCase); kopf's own bookkeeping is left alone."""
        return frozenset(f.alias or name for name, f in self.status.model_fields.items())

    def owns(self, ref: dict[str, Any]) -> bool:
        """Whether an ownerReference points at a resource of this kind."""
        return ref.get("kind") == self.kind and str(ref.get("apiVersion", "")).startswith(GROUP + "/")

    def parse_spec(self, obj: dict[str, Any]) -> Any:
        """A spec dict -> the typed spec with defaults; SpecError names the offending field."""
        try:
            return self.spec.model_validate(obj, by_alias=True, by_name=False)
        except ValidationError as exc:
            raise SpecError(format_errors(exc, doc=obj)) from None

    def parse_manifest(self, obj: dict[str, Any]) -> Any:
        """A whole document (apiVersion, kind, metadata, spec) -> the typed manifest with defaults."""
        try:
            return self.manifest.model_validate(obj, by_alias=True, by_name=False)
        except ValidationError as exc:
            raise SpecError(format_errors(exc, root="", doc=obj)) from None

    def load_manifest(self, path: str | Path) -> Any:
        """The one document of this kind in a YAML file, every document of which is checked as `kubetune
        validate` checks it: a file the operator would not take whole is refused, not read in part."""
        documents = check_documents(path)
        bad = [d.message() for d in documents if d.problem]
        if bad:
            raise SpecError("; ".join(bad))
        mine = [d.manifest for d in documents if d.kind == self.kind]
        if len(mine) != 1:
            raise SpecError(f"{path}: expected exactly one {self.kind} document, found {len(mine)}")
        return mine[0]


_SHAPES = {dict: "mapping", list: "list", str: "string", int: "number", float: "number", bool: "boolean"}


@dataclass(frozen=True)
class Document:
    """One document of a manifest file, checked as the operator checks a resource of its kind."""

    number: int  # from 1
    of: int  # the documents in the file
    kind: str | None = None
    manifest: Any = None  # the typed manifest, when it is valid
    problem: str | None = None  # why it is not: `field: problem`, `; `-joined

    def message(self) -> str:
        """The problem, naming the document when the file holds several (or the document itself is wrong)."""
        whole = self.problem is not None and self.problem.startswith("a manifest is")
        return f"document {self.number}: {self.problem}" if self.of > 1 or whole else str(self.problem)


def _kinds() -> dict[str, tuple[ResourceKind, Callable[[Any], list[str]]]]:
    """Every kind a manifest file may hold, with its checks beyond the schema (each kind's package builds on
    this module, so they are imported when first needed)."""
    from .finetunerun import api as ftr_api
    from .finetunerun import validation as ftr_validation
    from .modelserve import api as ms_api
    from .modelserve import validation as ms_validation

    return {ftr_api.KIND: (ftr_api.RESOURCE, ftr_validation.problems),
            ms_api.KIND: (ms_api.RESOURCE, ms_validation.problems)}


def check_documents(path: str | Path) -> list[Document]:
    """Every document of a manifest file, checked as the operator would check it (the schema, the kind's own
    checks), and no resource defined twice. SpecError when the file itself cannot be read as YAML or is empty:
    `kubetune validate`, `kubetune run` and `kubetune serve` all read manifests through here."""
    try:
        docs = read_documents(path)
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply") from None
    if not docs:
        raise SpecError(f"{path}: no document")
    kinds = _kinds()
    seen: dict[tuple[str, str, str], int] = {}
    out = []
    for number, doc in enumerate(docs, 1):
        if not isinstance(doc, dict):
            out.append(Document(number, len(docs), problem="a manifest is a mapping (apiVersion, kind, metadata, "
                                f"spec), not a {_SHAPES.get(type(doc), type(doc).__name__)}"))
            continue
        kind = doc.get("kind")
        try:
            if not isinstance(kind, str) or kind not in kinds:
                raise SpecError(f"kind: {shown(kind)} is not one of {', '.join(kinds)}")
            resource, checks = kinds[kind]
            manifest = resource.parse_manifest(doc)
            problems = checks(manifest.spec)
            if problems:
                raise SpecError("; ".join(problems))
            meta = manifest.metadata
            identity = (kind, meta.namespace, meta.name)
            if identity in seen:
                raise SpecError(f"metadata.name: {kind} {meta.namespace}/{meta.name} is also document "
                                f"{seen[identity]}; one file defines each resource once")
            seen[identity] = number
            out.append(Document(number, len(docs), kind, manifest))
        except SpecError as exc:
            out.append(Document(number, len(docs), kind if isinstance(kind, str) else None, problem=str(exc)))
        except RecursionError:
            out.append(Document(number, len(docs), problem="nested too deeply"))
    return out


ALIASED_NODES_MAX = 10_000  # nodes a document may gain through YAML aliases; an alias bomb gains millions


class _Loader(yaml.SafeLoader):
    """YAML as kubectl reads it: a key given twice in one mapping is an error (not the last one silently
    winning), a timestamp-looking scalar stays the string it is (JSON has no dates), and aliases may not
    multiply a document (the billion laughs) nor make it contain itself."""

    def construct_document(self, node: yaml.Node) -> Any:
        self.documents = getattr(self, "documents", 0) + 1
        try:
            _check_aliases(node)
        except SpecError as exc:
            raise SpecError(f"document {self.documents}: {exc}" if self.documents > 1 else str(exc)) from None
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` is overridden by the mapping's own keys, by design
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # unhashable: the base class reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"key {shown(key)} is given twice",
                                                        key_node.start_mark)
        return super().construct_mapping(node, deep)


def _check_aliases(root: yaml.Node) -> None:
    """Refuse a document that its aliases expand by more than ALIASED_NODES_MAX nodes, or that holds an alias
    of a node around it: either multiplies whatever walks the data (a copy, a JSON dump, a merge key's
    flattening). Counts without expanding: each node's expanded size is kept, an alias adds it. The message
    names the field where the limit is crossed."""
    sizes: dict[int, int] = {}
    walking: set[int] = set()
    counts = {"nodes": 0, "expanded": 0}

    def walk(node: yaml.Node, where: str) -> int:
        key = id(node)
        if key in walking:
            raise SpecError(f"{where.lstrip('.') or 'the document'}: a YAML alias of a node that contains it "
                            "(the data would hold itself)")
        if key in sizes:  # an alias: the node again, with all it holds
            counts["expanded"] += sizes[key]
            if counts["expanded"] - counts["nodes"] > ALIASED_NODES_MAX:
                raise SpecError(f"{where.lstrip('.') or 'the document'}: YAML aliases expand the document by "
                                f"more than {ALIASED_NODES_MAX} nodes (an alias bomb?)")
            return sizes[key]
        walking.add(key)
        counts["nodes"] += 1
        counts["expanded"] += 1
        size = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                size += walk(k, where) + walk(v, where + _key(k.value if isinstance(k, yaml.ScalarNode) else "?"))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                size += walk(item, f"{where}[{i}]")
        walking.discard(key)
        sizes[key] = size
        return size

    walk(root, "")


_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def _line_column(text: str | bytes, offset: int) -> str:
    newline = "\n" if isinstance(text, str) else b"\n"
    line = text.count(newline, 0, offset) + 1
    return f"line {line}, column {offset - (text.rfind(newline, 0, offset) + 1) + 1}"


def read_documents(path: str | Path) -> list[Any]:
    """The YAML documents of a file; SpecError (with the line and column) when it is not readable YAML."""
    try:
        data = Path(path).read_bytes()
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text at {_line_column(data, exc.start)}: byte {exc.start} "
                        f"({data[exc.start]:#04x}): {exc.reason}") from None
    except OSError as exc:
        raise SpecError(f"{path}: {exc.strerror or exc}") from None
    try:
        return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]  # noqa: S506 (a SafeLoader)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (a control character)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise SpecError(f"{path}: not valid YAML at {_line_column(text, exc.position)}: character #x{code:04x} "
                        "is not allowed") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{path}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply") from None
