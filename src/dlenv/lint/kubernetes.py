"""Kubernetes manifest rules (PyYAML, every document of a file): privileged or root
containers, host namespaces and paths, limits, GPUs, image versions, probes of serving
workloads, secrets written as env values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlenv.lint.dockerfile import _SECRET_NAME, unversioned
from dlenv.lint.rules import Finding, _f

LINE = "__line__"  # the line of a mapping, recorded while loading

# Where each workload kind keeps its pod template's spec.
_POD_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Pod": (("spec",),),
    "Deployment": (("spec", "template", "spec"),),
    "StatefulSet": (("spec", "template", "spec"),),
    "DaemonSet": (("spec", "template", "spec"),),
    "ReplicaSet": (("spec", "template", "spec"),),
    "Job": (("spec", "template", "spec"),),
    "CronJob": (("spec", "jobTemplate", "spec", "template", "spec"),),
}
_REPLICA_SPECS = ("tfReplicaSpecs", "pytorchReplicaSpecs", "jaxReplicaSpecs")  # Kubeflow
_SERVING = ("Deployment", "StatefulSet")


def _loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        """SafeLoader that keeps each mapping's line, for findings at the right place."""

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
            mapping[LINE] = node.start_mark.line + 1
            return mapping

    return Loader


def is_kubernetes(path: Path, text: str) -> bool:
    return path.suffix in (".yml", ".yaml") and bool(
        re.search(r"^apiVersion:", text, re.M) and re.search(r"^kind:", text, re.M))


def _dig(doc: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc


def _pod_specs(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    kind = doc.get("kind", "")
    for keys in _POD_PATHS.get(kind, ()):
        spec = _dig(doc, keys)
        if isinstance(spec, dict):
            yield spec
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return
    for field in _REPLICA_SPECS:
        for replica in (spec.get(field) or {}).values():
            pod = _dig(replica, ("template", "spec"))
            if isinstance(pod, dict):
                yield pod
    for job in spec.get("replicatedJobs") or []:  # JobSet
        pod = _dig(job, ("template", "spec", "template", "spec"))
        if isinstance(pod, dict):
            yield pod


def lint_kubernetes(text: str, file: str = "manifest.yaml") -> list[Finding]:
    import yaml

    found: list[Finding] = []
    for doc in yaml.load_all(text, Loader=_loader()):
        if not isinstance(doc, dict):
            continue
        kind = str(doc.get("kind", ""))
        name = str(_dig(doc, ("metadata", "name")) or kind)
        for pod in _pod_specs(doc):
            _lint_pod(pod, f"{kind} {name}", kind in _SERVING, file, found)
    return found


# The Pod Security Standards, restricted profile (Kubernetes' "Pod Security Standards" page):
# the volume kinds it allows, and the one capability a container may add back.
_RESTRICTED_VOLUMES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                 "persistentVolumeClaim", "projected", "secret"})
_SECCOMP = ("RuntimeDefault", "Localhost")


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What in a pod spec the restricted Pod Security Standard forbids (empty: none). The
    baseline rules (host namespaces and paths, privileged) are ML201 and ML202; ML208 covers
    root and privilege escalation, so this names the rest."""
    out = []
    context = pod.get("securityContext") or {}
    pod_seccomp = (context.get("seccompProfile") or {}).get("type")
    for volume in pod.get("volumes") or []:
        kinds = [k for k in volume if k not in ("name", LINE)]
        if isinstance(volume, dict) and not set(kinds) <= _RESTRICTED_VOLUMES:
            out.append(f"volume {volume.get('name', '?')} is a {', '.join(kinds)} volume")
    for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        if not isinstance(c, dict):
            continue
        name = c.get("name", "?")
        own = c.get("securityContext") or {}
        caps = own.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"container {name} does not drop ALL capabilities")
        added = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            out.append(f"container {name} adds {', '.join(sorted(added))}")
        seccomp = (own.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in _SECCOMP:
            out.append(f"container {name} has no RuntimeDefault or Localhost seccomp profile")
        for port in c.get("ports") or []:
            if isinstance(port, dict) and port.get("hostPort"):
                out.append(f"container {name} takes host port {port['hostPort']}")
    return out


def _lint_pod(pod: dict[str, Any], what: str, serving: bool, file: str,
              found: list[Finding]) -> None:
    line = pod.get(LINE, 1)
    for problem in restricted_violations(pod):
        found.append(_f("ML209", file, line, f"{what}: {problem}",
                        "drop ALL capabilities, set seccompProfile: RuntimeDefault, and use "
                        "emptyDir, PVC, Secret or ConfigMap volumes"))
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key) is True:
            found.append(_f("ML202", file, line, f"{what} sets {key}: true",
                            "for DataLoader workers mount an emptyDir with medium: Memory at "
                            "/dev/shm instead of hostIPC" if key == "hostIPC"
                            else f"remove {key}"))
    for volume in pod.get("volumes") or []:
        if isinstance(volume, dict) and "hostPath" in volume:
            found.append(_f("ML202", file, volume.get(LINE, line),
                            f"{what} mounts the node's {volume['hostPath'].get('path', '?')}",
                            "use a PersistentVolumeClaim (or a CSI volume) for data"))
    pod_context = pod.get("securityContext") or {}
    init = pod.get("initContainers") or []
    for c in [*init, *(pod.get("containers") or [])]:
        if isinstance(c, dict):  # an init container finishes before serving (and has no probes)
            _lint_container(c, pod_context, f"{what}, container {c.get('name', '?')}",
                            serving and c not in init, file, found)


def _lint_container(c: dict[str, Any], pod_context: dict[str, Any], what: str,
                    serving: bool, file: str, found: list[Finding]) -> None:
    line = c.get(LINE, 1)
    context = c.get("securityContext") or {}
    if context.get("privileged") is True:
        found.append(_f("ML201", file, context.get(LINE, line), f"{what} is privileged",
                        "drop privileged; the NVIDIA device plugin gives GPUs through "
                        "resources.limits"))
    non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    uid = context.get("runAsUser", pod_context.get("runAsUser"))
    if non_root is not True or uid == 0 or context.get("allowPrivilegeEscalation") is not False:
        found.append(_f("ML208", file, line, f"{what} may run as root or gain privileges",
                        "set runAsNonRoot: true (and runAsUser: 1000) and "
                        "allowPrivilegeEscalation: false in its securityContext"))
    resources = c.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    if not {"cpu", "memory"} <= set(limits):
        found.append(_f("ML203", file, line, f"{what} has no "
                        + " and ".join(k for k in ("cpu", "memory") if k not in limits)
                        + " limit", "set resources.limits for cpu and memory"))
    for key in requests:
        if str(key).endswith("/gpu") and key not in limits:
            found.append(_f("ML204", file, resources.get(LINE, line),
                            f"{what} asks for {key} in requests only",
                            f"put {key} in resources.limits (requests default to limits for "
                            "extended resources)"))
    image = str(c.get("image", ""))
    if image and unversioned(image):
        found.append(_f("ML205", file, line, f"{what} runs {image}: no fixed version",
                        "reference the image by digest (image:tag@sha256:…)"))
    if serving and not (c.get("readinessProbe") and c.get("livenessProbe")):
        found.append(_f("ML206", file, line, f"{what} serves without "
                        + ("readiness and liveness probes" if not c.get("readinessProbe")
                           and not c.get("livenessProbe") else "a readiness probe"
                           if not c.get("readinessProbe") else "a liveness probe"),
                        "add readinessProbe and livenessProbe on the server's health "
                        "endpoints"))
    for env in c.get("env") or []:
        if isinstance(env, dict) and _SECRET_NAME.search(str(env.get("name", ""))) and \
                env.get("value") not in (None, ""):
            found.append(_f("ML207", file, env.get(LINE, line),
                            f"{what} has {env['name']} written as a value",
                            "take it from a Secret: valueFrom.secretKeyRef"))
