"""The rules (id, severity, title, why) and the ``Finding`` each check reports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning", "info", "style"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info", "style")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    title: str
    why: str


_RULES = [
    Rule("ML001", "error", "base image is 'latest' or has no tag",
         "the image changes under you; builds stop being reproducible"),
    Rule("ML002", "info", "base image is pinned by tag, not digest",
         "a tag can be moved; a digest cannot"),
    Rule("ML003", "warning", "Jupyter or development tools in a serving or training image",
         "a serving or training image should hold only what runs: every extra tool is attack "
         "surface and size, and a Jupyter image starts a notebook server by default"),
    Rule("ML004", "warning", "the image runs as root",
         "a process escaping the framework's sandbox owns the container, and files written "
         "to mounts belong to root"),
    Rule("ML005", "warning", "pip installs packages without pins or hashes",
         "unpinned installs resolve differently every build"),
    Rule("ML020", "info", "pip installs pinned versions without hashes",
         "a version pin trusts whatever the index serves under that version; a hash pins the "
         "file"),
    Rule("ML006", "warning", "pip leaves its cache in the image",
         "the wheel cache doubles the size of the layer"),
    Rule("ML007", "warning", "apt-get install without --no-install-recommends",
         "Recommends pull in hundreds of MB nobody asked for"),
    Rule("ML008", "warning", "apt-get without cleaning its lists",
         "/var/lib/apt/lists stays in the layer"),
    Rule("ML009", "warning", "CUDA from both the base image and nvidia-* wheels",
         "two CUDA runtimes: gigabytes twice, and the framework may load either"),
    Rule("ML010", "error", "the framework's CUDA does not match the CUDA base image",
         "the framework was built for another CUDA major version and cannot use this one"),
    Rule("ML011", "error", "tensorflow-gpu is gone since TensorFlow 2.12",
         "the package stopped at 2.11; 'tensorflow' has GPU support on Linux"),
    Rule("ML012", "error", "Jupyter without a token or password",
         "anyone who reaches the port runs code as the container's user"),
    Rule("ML013", "warning", "Jupyter run as root (--allow-root)",
         "code in a notebook owns the container and writes root-owned files to mounts "
         "(binding 0.0.0.0 inside a container is fine: where the port is published decides "
         "who reaches it, see ML103)"),
    Rule("ML014", "error", "SSH with passwords, root login or host keys baked in",
         "every container of the image shares the host keys; passwords can be guessed"),
    Rule("ML015", "error", "a secret in ENV or ARG",
         "ENV and ARG values are stored in the image's config and history"),
    Rule("ML016", "warning", "ADD from a URL",
         "the download is not verified and the layer is not reproducible"),
    Rule("ML017", "warning", "no .dockerignore beside the Dockerfile",
         "the whole directory (.git, data, checkpoints) is sent to the engine"),
    Rule("ML018", "error", "a Dockerfile dlenv rendered was changed afterwards",
         "its instructions are not the ones dlenv wrote: an edit, or a value that broke "
         "out of its line"),
    Rule("ML019", "warning", "the whole project is copied before pip installs the "
         "requirements", "every code edit invalidates the install layer, so each build "
         "reinstalls every package"),
    Rule("ML021", "error", "a private key is copied into the image",
         "anyone who pulls the image has the key, in every layer that holds it"),
    Rule("ML101", "error", "privileged container in compose",
         "a privileged container is root on the host"),
    Rule("ML102", "warning", "host IPC, PID or network namespace in compose",
         "the container shares the host's processes, shared memory or network"),
    Rule("ML103", "warning", "a port published on every interface",
         "anyone on the host's networks reaches it; a notebook or SSH port is a shell"),
    Rule("ML104", "error", "a secret written in compose's environment",
         "the value is in the file, its history and every 'docker inspect'"),
    Rule("ML105", "warning", "a service's image is 'latest' or has no tag",
         "the service runs whatever the tag points to when it is pulled"),
    Rule("ML201", "error", "a privileged container in Kubernetes",
         "a privileged container is root on the node"),
    Rule("ML202", "warning", "host namespaces or host paths in a pod",
         "the pod shares the node's network, processes, shared memory or files"),
    Rule("ML203", "warning", "a container without CPU and memory limits",
         "one job's leak or fork bomb takes the node from every other pod"),
    Rule("ML204", "error", "GPUs asked for in requests only",
         "extended resources such as nvidia.com/gpu are scheduled by their limits"),
    Rule("ML205", "warning", "a pod's image is 'latest' or has no tag",
         "each node pulls whatever the tag points to: workers of one job may differ"),
    Rule("ML206", "warning", "a serving workload without readiness and liveness probes",
         "traffic reaches pods before the model is loaded, and a hung server is never "
         "restarted"),
    Rule("ML207", "error", "a secret written as an env value in a manifest",
         "the value is in the manifest, its history and every 'kubectl get -o yaml'"),
    Rule("ML208", "warning", "a container that may run as root or gain privileges",
         "the restricted Pod Security Standard requires runAsNonRoot and "
         "allowPrivilegeEscalation: false"),
    Rule("ML209", "warning", "a pod the restricted Pod Security Standard refuses",
         "a namespace that enforces 'restricted' (as shared GPU clusters do) rejects the pod: "
         "capabilities must be dropped, seccomp set, volumes of the allowed kinds only"),
]


RULES = {r.id: r for r in _RULES}


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    file: str
    line: int
    message: str
    fix: str = ""
    source: str = "dlenv"  # dlenv | hadolint

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _f(rule: str, file: str, line: int, message: str, fix: str) -> Finding:
    return Finding(rule, RULES[rule].severity, file, line, message, fix)
