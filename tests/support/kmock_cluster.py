"""Run the operator against kopf's Kubernetes emulator (kmock) in-process: for tests and bench/operator.py.

    with EmulatedCluster() as cluster, OperatorThread(cluster.url):
        cluster.create(run_manifest)
        cluster.wait_for(lambda: cluster.jobs("default"))

The emulator is as strict as an API server on writes (`StrictEmulator`, `apiserver`): our kinds are pruned,
defaulted and validated against the CRDs `kubetune_operator.crd` generates, built-in kinds against
Kubernetes' schemas, and a refused write (422, or 400 for a body with NaN) stores nothing. A cluster whose
CRDs are an older release's that checked no spec field is `EmulatedCluster(outdated_crds=True)`: specs land
as they are sent (the operator must refuse what its CRD would have), status writes are still checked.

Test support, not shipped: kmock is a dev dependency. The emulator runs in its own thread and event
loop; the operator in another (kopf's shutdown must not cancel the emulator's tasks), built exactly as
`kubetune-operator` builds it, with `Settings` pointing it at the emulator's URL and fast timers.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import datetime
import functools
import gzip
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
import kmock
import yaml

from kubetune_operator import crd, registry
from kubetune_operator.apitypes import API_VERSION, GROUP, VERSION
from kubetune_operator.finetunerun import api
from kubetune_operator.settings import Settings

from . import apiserver

# Timers of a test operator: resyncs and cleanup retries in fractions of a second.
TEST_SETTINGS = {"resync_seconds": 0.3, "cleanup_delay": 0.2, "cleanup_attempts": 2, "cleanup_timeout": 10.0}
PLURALS = {kind.kind: kind.plural for kind in crd.KINDS}

_rv = itertools.count(1)
_UNCHECKED = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


# JobSet's published CRD (see tests/fixtures/jobset/SOURCE.md), as on a cluster that has it installed.
JOBSET_CRD = Path(__file__).resolve().parents[1] / "fixtures" / "jobset" / "jobset.x-k8s.io_jobsets-v0.12.0.yaml.gz"


@functools.cache
def crd_schemas(outdated: bool = False) -> dict[Any, apiserver.CustomResourceSchema]:
    """The schemas of the custom resources the test cluster serves: our kinds as the CRDs generated from this
    tree declare them (`outdated`: with a spec nothing checks), and JobSet's."""
    out = {}
    for kind in crd.KINDS:
        schema = apiserver.crd_version_schema(crd.crd(kind), VERSION)
        if outdated:
            schema = copy.deepcopy(schema)
            schema["properties"]["spec"] = _UNCHECKED
        out[kmock.resource(GROUP, VERSION, kind.plural)] = apiserver.CustomResourceSchema(kind.kind, GROUP, schema)
    jobset = yaml.safe_load(gzip.decompress(JOBSET_CRD.read_bytes()))
    out[kmock.resource("jobset.x-k8s.io", "v1alpha2", "jobsets")] = apiserver.CustomResourceSchema(
        "JobSet", "jobset.x-k8s.io", apiserver.crd_version_schema(jobset, "v1alpha2"))
    return out


@attrs.frozen
class _PatchConflict(kmock.KubernetesError):
    status: int = 422
    reason: str = "Invalid"
    message: str = "the object has been modified; please apply your changes to the latest version"


def _refusal(refused: apiserver.Refused, resource: Any, kind: str, name: str | None) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=refused.code, reason=refused.reason, message=refused.message,
                                 details=refused.details(kind, resource.group, name))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    """What a generation counts: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class StrictEmulator(kmock.KubernetesEmulator):
    """kmock with what an API server does on a write (`apiserver`): the body decoded as JSON proper, our kinds
    pruned, defaulted and validated against their CRDs, built-in kinds against Kubernetes' schemas, a refused
    write answered 422 with nothing stored; the status subresource (a write to /status changes only status, a
    write to the object anything but status, a create starts without status); and the server's metadata
    (uid, creationTimestamp, generation moving when the content does, namespace, generateName, a new
    resourceVersion on every write that changes something, none on one that changes nothing)."""

    def __init__(self, schemas: dict[Any, apiserver.CustomResourceSchema], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.schemas = schemas  # resource -> its CRD's schema
        self._writes = asyncio.Lock()  # one write at a time: each is computed from the object it replaces
        self.served: collections.Counter[str] = collections.Counter()  # "GET /apis" -> how many were served
        # Discovery with a trailing slash, as kubernetes_asyncio asks it (stock kmock answers 404: no groups).
        self.fallback["get /apis/"] << self._serve_apis
        self.fallback["get /api/"] << self._serve_api

    async def _handle(self, request: kmock.Request):  # type: ignore[override]
        self.served[f"{request.method.value} {request.url.path}"] += 1
        try:
            if request.resource is None or request.action not in (kmock.action.CREATE, kmock.action.UPDATE):
                return await super()._handle(request)
            async with self._writes:
                admitted = await self._admit(request)
                if isinstance(admitted, dict):
                    return aiohttp.web.json_response(admitted)
                response = await super()._handle(admitted)
                if request.action == kmock.action.CREATE and response.status == 200 and not response.prepared:
                    response.set_status(201)  # what the API server answers a create (clients expect it)
                return response
        finally:
            # kmock keeps every request for assertions and matches each new one by scanning that history,
            # so a long bench turns quadratic. Nothing here asserts on requests: forget each once served.
            for k, seen in enumerate(self._requests):
                if seen is request:
                    del self._requests[k]
                    break

    async def _admit(self, request: kmock.Request) -> kmock.Request | dict[str, Any]:
        """The request for kmock to serve, its data the whole object to store; or the stored object when the
        write would change nothing. Raises the API server's refusal."""
        info = self.resources[request.resource] if request.resource in self.resources else None
        kind = (info.kind if info else None) or request.resource.plural
        try:
            body = apiserver.decode(request.body)
        except apiserver.Refused as exc:
            raise _refusal(exc, request.resource, kind, request.name) from None
        has_status = info is not None and "status" in info.subresources
        if request.action == kmock.action.CREATE:
            if not isinstance(body, dict):
                raise kmock.KubernetesError(status=400, reason="BadRequest", message="the body is not an object")
            new, old = body, None
            meta = new.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            if request.namespace:
                meta["namespace"] = request.namespace
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
            if has_status:
                new.pop("status", None)
            if self._lookup(request.resource, meta.get("namespace"), meta.get("name")) is not None:
                return request  # kmock answers 409
        else:
            stored = self._lookup(request.resource, request.namespace, request.name)
            if stored is None:
                return request  # kmock answers 404
            old = stored.raw
            new = await self._patched(request, old, body)
            if has_status and request.subresource == "status":
                new = {**copy.deepcopy(old), "status": new.get("status")}
            elif has_status:
                new["status"] = copy.deepcopy(old.get("status"))
            if new.get("status") is None:
                new.pop("status", None)
            meta = new.setdefault("metadata", {})
            for key in ("uid", "creationTimestamp", "namespace", "name", "generation", "resourceVersion"):
                if key in old.get("metadata", {}):
                    meta[key] = old["metadata"][key]
            if _content(new) != _content(old):
                meta["generation"] = int(meta.get("generation") or 1) + 1
        new = self._validated(request, kind, new, old)
        if old is not None and new == old:
            return old
        new["metadata"]["resourceVersion"] = str(next(_rv))
        # kmock stores a create's data, and applies an update's as a patch: replace the whole object. (A kmock
        # request is frozen, and only the very request it parsed is matched to its reactions.)
        data = new if request.action == kmock.action.CREATE else [{"op": "replace", "path": "", "value": new}]
        object.__setattr__(request, "data", data)
        return request

    async def _patched(self, request: kmock.Request, old: dict[str, Any], body: Any) -> dict[str, Any]:
        if isinstance(body, dict):
            return apiserver.merge_patch(copy.deepcopy(old), body)
        # A JSON patch, which kopf sends with a `test` of resourceVersion. kmock answers a failed test with
        # 500 (kopf then retries the stale patch for seconds); the apiserver answers 422, upon which kopf
        # re-reads the object. kmock's watch also replays existing objects on every (re)connect, so kopf may
        # act on a stale copy; the apiserver would have streamed the newer version, so re-announce it.
        current = old.get("metadata", {}).get("resourceVersion")
        for op in body or []:
            if op.get("op") == "test" and op.get("path") == "/metadata/resourceVersion" \
                    and current is not None and op.get("value") != current:
                await self._buses[request.resource].put({"type": "MODIFIED", "object": old})
                raise _PatchConflict()
        try:
            return jsonpatch.apply_patch(copy.deepcopy(old), body)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise kmock.KubernetesError(status=422, reason="Invalid", message=f"the JSON patch does not apply: {exc}",
                                        details={}) from None

    def _validated(self, request: kmock.Request, kind: str, new: dict[str, Any],
                   old: dict[str, Any] | None) -> dict[str, Any]:
        name = new.get("metadata", {}).get("name")
        schema = self.schemas.get(request.resource)
        causes = apiserver.metadata_causes(new, old)
        try:
            new = schema.admit(new, old) if schema is not None else apiserver.admit_builtin(new, old)
        except apiserver.Refused as exc:
            causes += exc.causes
        if causes:
            raise _refusal(apiserver.invalid(kind, request.resource.group, name, causes), request.resource, kind, name)
        return new

    # kmock finds one object by scanning every stored object (events included), so each GET slows down as
    # a bench piles up runs; the apiserver looks objects up by key. Serve single-object reads by key.
    def _lookup(self, resource: Any, namespace: str | None, name: str | None) -> Any:
        obj = self._objects._objects.get((resource, namespace, name))
        return None if obj is None or obj.deleted else obj

    async def _serve_fetch(self, request: kmock.Request):  # type: ignore[override]
        obj = self._lookup(request.resource, request.namespace, request.name)
        if obj is None:
            return await super()._serve_fetch(request)  # the stock path raises the proper 404
        return obj.raw

    async def _serve_create(self, request: kmock.Request):  # type: ignore[override]
        meta = request.data.get("metadata", {})
        obj = self._lookup(request.resource, request.namespace or meta.get("namespace"), meta.get("name"))
        return obj.raw if obj is not None else await super()._serve_create(request)

    async def _serve_update(self, request: kmock.Request):  # type: ignore[override]
        obj = self._objects._objects.get((request.resource, request.namespace, request.name))
        return obj.last.raw if obj is not None else await super()._serve_update(request)

    def _get_resources(self):  # type: ignore[override]
        # Stock kmock adds the resource of every stored object on each call (a scan per request); every
        # resource used here is declared (bundled built-ins and the CRD), so the declared list is complete.
        return kmock.KubernetesScaffold._get_resources(self)

    def has(self, api_version: str, plural: str, namespace: str, name: str) -> bool:
        """Whether an object exists (a key lookup in-process, no HTTP)."""
        group, _, version = api_version.rpartition("/")
        return self._lookup(kmock.resource(group, version, plural), namespace, name) is not None


class EmulatedCluster:
    """The emulator served on a loopback port from a background thread, with a tiny sync HTTP client."""

    def __init__(self, outdated_crds: bool = False) -> None:
        self.url = ""
        self._schemas = crd_schemas(outdated_crds)
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True, name="kmock")
        self.emulator: StrictEmulator | None = None

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with StrictEmulator(self._schemas) as emu, kmock.Server(emu) as server:
            emu.resources.load_bundled()
            for kind in crd.KINDS:
                emu.resources[f"{GROUP}/{VERSION}/{kind.plural}"] = kmock.ResourceInfo(
                    kind=kind.kind, singular=kind.singular, namespaced=True,
                    verbs={"list", "watch", "get", "create", "patch", "update", "delete"}, subresources={"status"})
            # JobSet's CRD (JOBSET_CRD), as on a cluster that has it installed (the operator uses it only when told).
            emu.resources["jobset.x-k8s.io/v1alpha2/jobsets"] = kmock.ResourceInfo(
                kind="JobSet", singular="jobset", namespaced=True,
                verbs={"list", "watch", "get", "create", "patch", "update", "delete"}, subresources={"status"})
            self.emulator = emu
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> EmulatedCluster:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the kmock emulator did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    # -- HTTP client
    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            exc.status_body = json.loads(exc.read() or b"{}")  # type: ignore[attr-defined]  # the Status
            exc.msg = exc.status_body.get("message") or exc.msg  # type: ignore[attr-defined]
            raise

    @staticmethod
    def path(api_version: str, plural: str, namespace: str, name: str | None = None) -> str:
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        return f"{base}/namespaces/{namespace}/{plural}" + (f"/{name}" if name else "")

    def create(self, obj: dict[str, Any], plural: str | None = None) -> dict[str, Any]:
        plural = plural or PLURALS.get(obj["kind"]) or obj["kind"].lower() + "s"
        ns = obj["metadata"].get("namespace", "default")
        return self.request("POST", self.path(obj["apiVersion"], plural, ns), obj)

    def get(self, api_version: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", self.path(api_version, plural, namespace, name))
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def patch(self, api_version: str, plural: str, namespace: str, name: str, patch: dict[str, Any],
              subresource: str = "") -> dict[str, Any]:
        path = self.path(api_version, plural, namespace, name) + (f"/{subresource}" if subresource else "")
        return self.request("PATCH", path, patch, "application/merge-patch+json")

    def delete(self, api_version: str, plural: str, namespace: str, name: str) -> None:
        self.request("DELETE", self.path(api_version, plural, namespace, name))

    def list(self, api_version: str, plural: str, namespace: str) -> list[dict[str, Any]]:
        return self.request("GET", self.path(api_version, plural, namespace)).get("items", [])

    def run(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(API_VERSION, api.PLURAL, namespace, name)

    def jobs(self, namespace: str, run: str | None = None) -> list[dict[str, Any]]:
        jobs = self.list("batch/v1", "jobs", namespace)
        if run is None:
            return jobs
        return [j for j in jobs if any(r.get("name") == run for r in j["metadata"].get("ownerReferences") or [])]

    def finish_job(self, namespace: str, name: str, succeeded: bool = True, reason: str = "BackoffLimitExceeded",
                   message: str = "Job has reached the specified backoff limit") -> None:
        """What the Job controller would write when the Job's pod ends."""
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if succeeded:
            status = {"succeeded": 1, "startTime": now, "completionTime": now,
                      "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": now}]}
        else:
            status = {"failed": 1, "startTime": now,
                      "conditions": [{"type": "Failed", "status": "True", "reason": reason, "message": message,
                                      "lastTransitionTime": now}]}
        self.patch("batch/v1", "jobs", namespace, name, {"status": status}, subresource="status")


def jobset_status(succeeded: bool = True, reason: str = "AllJobsCompleted", message: str = "") -> dict[str, Any]:
    """What the JobSet controller writes when its group ends."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    kind = "Completed" if succeeded else "Failed"
    return {"terminalState": kind, "conditions": [{"type": kind, "status": "True", "reason": reason,
                                                    "message": message, "lastTransitionTime": now}]}


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.02,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class OperatorThread:
    """The real operator (kopf with kubetune's handlers) in its own thread and event loop."""

    def __init__(self, url: str, namespace: str | None = None, **settings: object) -> None:
        self.settings = Settings(api_url=url, **{**TEST_SETTINGS, **settings})  # type: ignore[arg-type]
        self.namespace = namespace
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="kopf")
        self.error: BaseException | None = None

    def _main(self) -> None:
        import kopf

        try:
            asyncio.run(kopf.operator(
                registry=registry.build(self.settings), standalone=True, clusterwide=self.namespace is None,
                namespaces=[self.namespace] if self.namespace else [],
                stop_flag=self._stop, ready_flag=self._ready, memo=kopf.Memo()))
        except BaseException as exc:  # noqa: BLE001 - surfaced to the test
            self.error = exc
            self._ready.set()

    def __enter__(self) -> OperatorThread:
        self._thread.start()
        if not self._ready.wait(30) or self.error:
            raise RuntimeError(f"the operator did not start: {self.error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
