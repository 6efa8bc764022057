"""What every kubetune.io/v1alpha1 resource shares: the group, the pydantic base of the typed specs, the
spec types two kinds use (storage, tolerations, conditions), error messages that name the field, and
`ResourceKind`, the description of a kind that the CRD generator and the Kubernetes layer work from.

Each kind's own models live in its package (`finetunerun.api`, `modelserve.api`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

GROUP = "kubetune.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A DNS subdomain (RFC 1123): what Secret and most object names may be (dots allowed).
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY = r"^([0-9]+(\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$"
DEFAULT_JOBS_IMAGE = "ghcr.io/kubetune/kubetune-jobs:0.1.0"


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


class Toleration(Model):
    """A pod toleration (core/v1 Toleration)."""

    key: str | None = _f(None, "Taint key.", max_length=253)
    operator: Literal["Exists", "Equal"] = _f("Equal", "Exists matches any value.")
    value: str | None = _f(None, "Taint value.", max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = _f(None, "Taint effect (all if unset).")
    toleration_seconds: int | None = _f(None, "How long a NoExecute taint is tolerated.", ge=0)


class Condition(Model):
    """A Kubernetes-convention condition."""

    type: str = _f(..., "Condition type (e.g. Succeeded, Ready, Progressing, Degraded).", max_length=64)
    status: Literal["True", "False", "Unknown"] = _f(..., "True, False or Unknown.")
    reason: str = _f(..., "CamelCase machine-readable reason.", max_length=128)
    message: str = _f("", "Human-readable detail.", max_length=4096)
    last_transition_time: str | None = _f(None, "When status last changed (RFC 3339).")
    observed_generation: int | None = _f(None, "metadata.generation this condition describes.")


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(..., max_length=63, pattern=DNS_LABEL)
    namespace: str = Field("default", max_length=63, pattern=DNS_LABEL)


def field_path(loc: tuple[str | int, ...], root: str = "spec") -> str:
    """pydantic error location -> `spec.stages[1].dataset.format` (camelCase, as in the manifest)."""
    out = root
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or "[" in str(part):
            continue
        else:
            out += f".{to_camel(str(part)) if '_' in str(part) else part}"
    return out.lstrip(".")


def format_errors(exc: ValidationError, root: str = "spec") -> str:
    lines = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{field_path(err['loc'], root)}: {msg}")
    return "; ".join(lines)


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
            return self.spec.model_validate(obj)
        except ValidationError as exc:
            raise SpecError(format_errors(exc)) from None

    def parse_manifest(self, obj: dict[str, Any]) -> Any:
        """A whole document (apiVersion, kind, metadata, spec) -> the typed manifest with defaults."""
        try:
            return self.manifest.model_validate(obj)
        except ValidationError as exc:
            raise SpecError(format_errors(exc, root="")) from None

    def load_manifest(self, path: str | Path) -> Any:
        """Read a YAML file holding exactly one document of this kind."""
        docs = read_documents(path)
        mine = [d for d in docs if isinstance(d, dict) and d.get("kind") == self.kind]
        if len(mine) != 1:
            raise SpecError(f"{path}: expected exactly one {self.kind} document, found {len(mine)}")
        return self.parse_manifest(mine[0])


def read_documents(path: str | Path) -> list[Any]:
    """The YAML documents of a file; SpecError (with the line) when it is not readable YAML."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise SpecError(f"{path}: {exc.strerror or exc}") from None
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{path}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply") from None
