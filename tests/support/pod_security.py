"""Kubernetes Pod Security Standards, "baseline" and "restricted" profiles, as a check of a pod spec dict.

    from support.pod_security import violations, pod_specs
    assert violations(job["spec"]["template"]["spec"]) == []

The rules are the documented controls of the profiles (kubernetes.io, "Pod Security Standards", policy
version "latest"), which the API server's PodSecurity admission enforces; no maintained Python
implementation exists (the reference one is Go, k8s.io/pod-security-admission). Each violation names the
control and the field: `"allowPrivilegeEscalation: spec.containers[0] (operator).securityContext.
allowPrivilegeEscalation must be false"`. Pods with `spec.os.name: windows` are exempt from the Linux-only
restricted controls (privilege escalation, seccomp, capabilities), as admission does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Baseline: capabilities a container may add (restricted narrows it to NET_BIND_SERVICE).
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
# Restricted: the only volume sources allowed (every other one, hostPath included, is refused).
RESTRICTED_VOLUMES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
LEVELS = ("baseline", "restricted")

# Kinds whose pod template sits at these paths.
_TEMPLATE_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"), "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"), "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"), "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def pod_specs(obj: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod spec, pod metadata) of a Pod or of a workload's pod template; nothing for other kinds."""
    path = _TEMPLATE_PATHS.get(obj.get("kind", ""))
    if path is None:
        return
    node: Any = obj
    for key in path[:-1]:
        node = (node or {}).get(key) or {}
    yield node.get(path[-1]) or {}, node.get("metadata") or {}


def _containers(pod: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in CONTAINER_LISTS:
        for i, c in enumerate(pod.get(field) or []):
            yield f"spec.{field}[{i}] ({c.get('name', '?')})", c


def violations(pod: dict[str, Any], metadata: dict[str, Any] | None = None,
               level: str = "restricted") -> list[str]:
    """Every control of `level` that the pod spec `pod` (with its `metadata`, for annotations) breaks."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    out = _baseline(pod, metadata or {})
    if level == "restricted":
        out += _restricted(pod, linux=(pod.get("os") or {}).get("name") != "windows")
    return out


def _baseline(pod: dict[str, Any], metadata: dict[str, Any]) -> list[str]:
    out: list[str] = []
    psc = pod.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            out.append(f"hostNamespaces: spec.{field} must be unset or false")
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        out.append("hostProcess: spec.securityContext.windowsOptions.hostProcess must be unset or false")
    for i, vol in enumerate(pod.get("volumes") or []):
        if "hostPath" in vol:
            out.append(f"hostPathVolumes: spec.volumes[{i}] ({vol.get('name', '?')}) must not be a hostPath")
    out += _selinux("spec.securityContext", psc)
    out += _apparmor("spec.securityContext", psc)
    if (psc.get("seccompProfile") or {}).get("type") == "Unconfined":
        out.append("seccompProfile: spec.securityContext.seccompProfile.type must not be Unconfined")
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            out.append(f"sysctls: spec.securityContext.sysctls {sysctl.get('name')!r} is not a safe sysctl")
    for key, value in (metadata.get("annotations") or {}).items():
        if key.startswith(APPARMOR_ANNOTATION) and not (value == "runtime/default" or value.startswith("localhost/")):
            out.append(f"appArmorProfile: metadata.annotations[{key}] must be runtime/default or localhost/*")
    for where, c in _containers(pod):
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append(f"privileged: {where}.securityContext.privileged must be unset or false")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            out.append(f"hostProcess: {where}.securityContext.windowsOptions.hostProcess must be unset or false")
        added = set((sc.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
        if added:
            out.append(f"capabilities: {where} adds {sorted(added)}, beyond the baseline set")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"hostPorts: {where} port {port.get('containerPort')} must not set hostPort")
        out += _selinux(f"{where}.securityContext", sc)
        out += _apparmor(f"{where}.securityContext", sc)
        if sc.get("procMount") not in (None, "Default"):
            out.append(f"procMount: {where}.securityContext.procMount must be unset or Default")
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            out.append(f"seccompProfile: {where}.securityContext.seccompProfile.type must not be Unconfined")
    return out


def _selinux(where: str, sc: dict[str, Any]) -> list[str]:
    opts = sc.get("seLinuxOptions") or {}
    out = []
    if opts.get("type", "") not in SELINUX_TYPES:
        out.append(f"seLinuxOptions: {where}.seLinuxOptions.type {opts['type']!r} is not allowed")
    for field in ("user", "role"):
        if opts.get(field):
            out.append(f"seLinuxOptions: {where}.seLinuxOptions.{field} must be unset")
    return out


def _apparmor(where: str, sc: dict[str, Any]) -> list[str]:
    kind = (sc.get("appArmorProfile") or {}).get("type")
    if kind is not None and kind not in ("RuntimeDefault", "Localhost"):
        return [f"appArmorProfile: {where}.appArmorProfile.type must be RuntimeDefault or Localhost"]
    return []


def _restricted(pod: dict[str, Any], linux: bool) -> list[str]:
    out: list[str] = []
    psc = pod.get("securityContext") or {}
    for i, vol in enumerate(pod.get("volumes") or []):
        kinds = set(vol) - {"name"}
        if kinds - RESTRICTED_VOLUMES:
            out.append(f"volumeTypes: spec.volumes[{i}] ({vol.get('name', '?')}) uses {sorted(kinds)}, allowed: "
                       f"{', '.join(sorted(RESTRICTED_VOLUMES))}")
    pod_non_root = psc.get("runAsNonRoot")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_non_root is False:
        out.append("runAsNonRoot: spec.securityContext.runAsNonRoot must not be false")
    if psc.get("runAsUser") == 0:
        out.append("runAsUser: spec.securityContext.runAsUser must not be 0")
    for where, c in _containers(pod):
        sc = c.get("securityContext") or {}
        non_root = sc.get("runAsNonRoot", pod_non_root)
        if non_root is not True:
            out.append(f"runAsNonRoot: {where} must run with runAsNonRoot true (in its securityContext or the pod's)")
        if sc.get("runAsUser") == 0:
            out.append(f"runAsUser: {where}.securityContext.runAsUser must not be 0")
        if not linux:
            continue
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"allowPrivilegeEscalation: {where}.securityContext.allowPrivilegeEscalation must be false")
        seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"seccompProfile: {where} needs seccompProfile.type RuntimeDefault or Localhost "
                       "(in its securityContext or the pod's)")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"capabilities: {where}.securityContext.capabilities.drop must include ALL")
        added = set(caps.get("add") or []) - RESTRICTED_CAPABILITIES
        if added:
            out.append(f"capabilities: {where} may add only NET_BIND_SERVICE, not {sorted(added)}")
    return out
