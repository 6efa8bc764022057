"""The Pod Security Standards checker (tests/support/pod_security.py): a compliant pod passes both levels,
and each documented control, broken alone, is reported under its name and field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from support.pod_security import pod_specs, violations

Pod = dict[str, Any]


def compliant() -> Pod:
    return {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [{"name": "init", "image": "x", "securityContext": _restricted_container()}],
        "containers": [{"name": "app", "image": "x", "ports": [{"containerPort": 80}],
                        "securityContext": {**_restricted_container(), "capabilities": {
                            "drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "data", "persistentVolumeClaim": {"claimName": "d"}},
                    {"name": "cfg", "configMap": {"name": "c"}}, {"name": "token", "projected": {"sources": []}}],
    }


def _restricted_container() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True}


def app(pod: Pod) -> dict[str, Any]:
    return pod["containers"][0]["securityContext"]


def _set(path: str, value: Any) -> Callable[[Pod], None]:
    def mutate(pod: Pod) -> None:
        *parents, last = path.split(".")
        node: Any = pod
        for key in parents:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        node[last] = value
    return mutate


def _drop(path: str) -> Callable[[Pod], None]:
    def mutate(pod: Pod) -> None:
        *parents, last = path.split(".")
        node: Any = pod
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        del node[last]
    return mutate


BASELINE = [
    ("hostNetwork", _set("hostNetwork", True), "hostNamespaces: spec.hostNetwork"),
    ("hostPID", _set("hostPID", True), "hostNamespaces: spec.hostPID"),
    ("hostIPC", _set("hostIPC", True), "hostNamespaces: spec.hostIPC"),
    ("privileged", _set("containers.0.securityContext.privileged", True),
     "privileged: spec.containers[0] (app)"),
    ("hostProcess", _set("securityContext.windowsOptions", {"hostProcess": True}), "hostProcess:"),
    ("capability beyond baseline", _set("containers.0.securityContext.capabilities.add", ["SYS_ADMIN"]),
     "capabilities: spec.containers[0] (app) adds ['SYS_ADMIN']"),
    ("hostPath", lambda p: p["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
     "hostPathVolumes: spec.volumes[4] (host)"),
    ("hostPort", _set("containers.0.ports", [{"containerPort": 80, "hostPort": 80}]),
     "hostPorts: spec.containers[0] (app) port 80"),
    ("AppArmor unconfined", _set("containers.0.securityContext.appArmorProfile", {"type": "Unconfined"}),
     "appArmorProfile: spec.containers[0] (app)"),
    ("AppArmor annotation", None, "appArmorProfile: metadata.annotations"),
    ("SELinux type", _set("securityContext.seLinuxOptions", {"type": "spc_t"}), "seLinuxOptions: spec.securityContext"),
    ("SELinux user", _set("initContainers.0.securityContext.seLinuxOptions", {"user": "root"}),
     "seLinuxOptions: spec.initContainers[0] (init).securityContext.seLinuxOptions.user"),
    ("procMount", _set("containers.0.securityContext.procMount", "Unmasked"), "procMount: spec.containers[0]"),
    ("seccomp unconfined", _set("securityContext.seccompProfile", {"type": "Unconfined"}),
     "seccompProfile: spec.securityContext.seccompProfile.type must not be Unconfined"),
    ("unsafe sysctl", _set("securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}]),
     "sysctls: spec.securityContext.sysctls 'kernel.msgmax'"),
]
RESTRICTED = [
    ("volume type", lambda p: p["volumes"].append({"name": "nfs", "nfs": {"server": "s", "path": "/"}}),
     "volumeTypes: spec.volumes[4] (nfs)"),
    ("escalation unset", _drop("containers.0.securityContext.allowPrivilegeEscalation"),
     "allowPrivilegeEscalation: spec.containers[0] (app)"),
    ("escalation in an init container", _set("initContainers.0.securityContext.allowPrivilegeEscalation", True),
     "allowPrivilegeEscalation: spec.initContainers[0] (init)"),
    ("runAsNonRoot unset", _drop("securityContext.runAsNonRoot"), "runAsNonRoot: spec.containers[0] (app)"),
    ("runAsNonRoot false in a container", _set("containers.0.securityContext.runAsNonRoot", False),
     "runAsNonRoot: spec.containers[0] (app)"),
    ("runAsUser 0", _set("containers.0.securityContext.runAsUser", 0), "runAsUser: spec.containers[0] (app)"),
    ("runAsUser 0 for the pod", _set("securityContext.runAsUser", 0), "runAsUser: spec.securityContext"),
    ("seccomp unset", _drop("securityContext.seccompProfile"), "seccompProfile: spec.containers[0] (app) needs"),
    ("drop ALL missing", _set("containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]}),
     "capabilities: spec.containers[0] (app).securityContext.capabilities.drop must include ALL"),
    ("capability beyond NET_BIND_SERVICE", _set("containers.0.securityContext.capabilities.add", ["CHOWN"]),
     "capabilities: spec.containers[0] (app) may add only NET_BIND_SERVICE"),
    ("ephemeral container", lambda p: p.setdefault("ephemeralContainers", []).append({"name": "debug", "image": "x"}),
     "allowPrivilegeEscalation: spec.ephemeralContainers[0] (debug)"),
]


def test_a_compliant_pod_passes_both_levels() -> None:
    assert violations(compliant()) == []
    assert violations(compliant(), level="baseline") == []
    # The container-level settings may replace the pod-level ones.
    pod = compliant()
    del pod["securityContext"]
    for c in pod["containers"] + pod["initContainers"]:
        c["securityContext"].update(runAsNonRoot=True, seccompProfile={"type": "Localhost", "localhostProfile": "p"})
    assert violations(pod) == []


@pytest.mark.parametrize("mutate,expected", [(m, e) for _, m, e in BASELINE + RESTRICTED],
                         ids=[name for name, _, _ in BASELINE + RESTRICTED])
def test_each_broken_control_is_reported(mutate: Callable[[Pod], None] | None, expected: str) -> None:
    pod = compliant()
    metadata: dict[str, Any] = {}
    if mutate is None:  # the AppArmor annotation lives in the pod's metadata
        metadata = {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}}
    else:
        mutate(pod)
    found = violations(pod, metadata)
    assert any(v.startswith(expected) for v in found), found


@pytest.mark.parametrize("mutate,expected", [(m, e) for _, m, e in RESTRICTED],
                         ids=[name for name, _, _ in RESTRICTED])
def test_restricted_controls_are_not_baseline(mutate: Callable[[Pod], None], expected: str) -> None:
    pod = compliant()
    mutate(pod)
    assert violations(pod, level="baseline") == []


def test_windows_pods_are_exempt_from_linux_only_controls() -> None:
    pod = compliant()
    pod["os"] = {"name": "windows"}
    del pod["securityContext"]["seccompProfile"]
    del app(pod)["capabilities"]
    del app(pod)["allowPrivilegeEscalation"]
    assert violations(pod) == []
    del pod["securityContext"]["runAsNonRoot"]
    assert [v.split(":")[0] for v in violations(pod)] == ["runAsNonRoot", "runAsNonRoot"]


def test_pod_specs_finds_templates_of_workloads() -> None:
    pod = compliant()
    meta = {"labels": {"a": "b"}}
    job = {"kind": "Job", "spec": {"template": {"metadata": meta, "spec": pod}}}
    cron = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": copy.deepcopy(job["spec"])}}}
    assert list(pod_specs(job)) == [(pod, meta)]
    assert list(pod_specs(cron)) == [(pod, meta)]
    assert list(pod_specs({"kind": "Pod", "metadata": meta, "spec": pod})) == [(pod, meta)]
    assert list(pod_specs({"kind": "Service", "spec": {}})) == []
    with pytest.raises(ValueError, match="level must be one of"):
        violations(pod, level="privileged")
