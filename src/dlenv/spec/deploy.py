"""Where a profile runs on a cluster: the ``[deploy]`` table of a spec (keys every profile
shares) and ``[deploy.train]``, ``[deploy.dev]``, ``[deploy.serve]`` (a profile's own, over
the shared ones). Every value is checked against the form Kubernetes gives it (names, label
keys and values, quantities), because ``dlenv k8s`` writes them into manifests.

Deploy settings say nothing about an image's bytes, so they are not part of the spec digest:
changing a GPU count or a namespace never makes the lock stale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any

from dlenv.fsutil import shorten
from dlenv.spec.collect import PATH_PART_RE, SYSTEM_TREES, _Collector, parse_env

# The forms Kubernetes checks (apimachinery's validation): a DNS-1123 label, a DNS-1123
# subdomain, a label's value, a label's key, a resource quantity (the common spellings).
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?"
                       r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
QUANTITY = re.compile(r"\d{1,9}(\.\d{1,6})?(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?")
_SECRET_KEY = re.compile(r"[-._A-Za-z0-9]{1,253}")
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
# Where a volume must not be mounted: the system, and what the pod itself mounts there.
_RESERVED_MOUNTS = frozenset({"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64",
                              "/proc", "/root", "/run", "/sbin", "/sys", "/tmp", "/usr",
                              "/var", "/dev/shm"})
DEPLOY_KEYS = (
    "namespace", "service_account", "service_account_token", "image_pull_secret", "queue",
    "priority_class", "scheduler", "node_selector", "gpu_product", "tolerations", "gpus",
    "cpu", "memory", "cpu_limit", "memory_limit", "shm", "workers", "chief", "ps",
    "evaluator", "port", "service_type", "volumes", "env", "secrets",
)
PROFILE_TABLES = ("train", "dev", "serve")
VOLUME_KEYS = ("claim", "size", "storage_class", "path", "read_only")
TOLERATION_KEYS = ("key", "operator", "value", "effect")
MAX_WORKERS = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Toleration:
    key: str
    operator: str = "Exists"  # Exists | Equal
    value: str = ""
    effect: str = ""  # "" matches every effect


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterVolume:
    """A persistent volume: an existing claim, or a new one of ``size``."""

    name: str
    path: str
    claim: str | None = None
    size: str | None = None
    storage_class: str | None = None
    read_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Deploy:
    """One level of ``[deploy]``; ``None`` is "not said here" (``over`` merges levels)."""

    namespace: str | None = None
    service_account: str | None = None
    service_account_token: bool | None = None
    image_pull_secret: str | None = None
    queue: str | None = None
    priority_class: str | None = None
    scheduler: str | None = None
    node_selector: tuple[tuple[str, str], ...] | None = None
    gpu_product: str | None = None
    tolerations: tuple[Toleration, ...] | None = None
    gpus: int | None = None
    cpu: str | None = None
    memory: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None
    shm: str | None = None
    workers: int | None = None
    chief: bool | None = None
    ps: int | None = None
    evaluator: bool | None = None
    port: int | None = None
    service_type: str | None = None
    volumes: tuple[ClusterVolume, ...] | None = None
    env: tuple[tuple[str, str], ...] | None = None
    secrets: tuple[tuple[str, str, str], ...] | None = None  # (variable, secret, key)

    def over(self, base: Deploy) -> Deploy:
        """This level's values over ``base``'s."""
        return replace(base, **{f.name: getattr(self, f.name) for f in fields(self)
                                if getattr(self, f.name) is not None})


@dataclass(frozen=True, slots=True, kw_only=True)
class DeployTable:
    shared: Deploy = Deploy()
    profiles: tuple[tuple[str, Deploy], ...] = ()

    def for_profile(self, name: str | None) -> Deploy:
        own = dict(self.profiles).get(name or "")
        return own.over(self.shared) if own else self.shared


def _pattern(c: _Collector, key: str, value: Any, pattern: re.Pattern[str], what: str,
             example: str) -> str | None:
    raw = c.string(key, value)
    if raw is not None and not pattern.fullmatch(raw):
        c.add(key, f"{shorten(raw)} is not {what}", f'write e.g. {key.split(".")[-1]} = '
              f'"{example}"')
        return None
    return raw


def _labels(c: _Collector, key: str, value: Any) -> tuple[tuple[str, str], ...] | None:
    if value is None:
        return None
    out = []
    for name, val in c.table(key, value).items():
        if not LABEL_KEY.fullmatch(name) or len(name) > 316:
            c.add(f"{key}.{shorten(name, 40)}", "not a Kubernetes label key",
                  'write e.g. "cloud.google.com/gke-accelerator" or "pool"')
        elif _pattern(c, f"{key}.{name}", val, LABEL_VALUE, "a Kubernetes label value",
                      "a100") is not None:
            out.append((name, val))
    return tuple(sorted(out))


def _tolerations(c: _Collector, key: str, value: Any) -> tuple[Toleration, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value) \
            or len(value) > 32:
        c.add(key, "expected a list of tables (at most 32)",
              'write tolerations = [{ key = "nvidia.com/gpu", effect = "NoSchedule" }]')
        return None
    out = []
    for i, table in enumerate(value):
        where = f"{key}[{i}]"
        c.unknown_keys(f"{where}.", table, TOLERATION_KEYS)
        name = _pattern(c, f"{where}.key", table.get("key"), LABEL_KEY, "a label key",
                        "nvidia.com/gpu")
        operator = c.string(f"{where}.operator", table.get("operator")) or \
            ("Equal" if "value" in table else "Exists")
        if operator not in ("Exists", "Equal"):
            c.add(f"{where}.operator", f"{shorten(operator)} is not Exists or Equal")
        val = _pattern(c, f"{where}.value", table.get("value"), LABEL_VALUE, "a label value",
                       "true") or ""
        effect = c.string(f"{where}.effect", table.get("effect")) or ""
        if effect and effect not in EFFECTS:
            c.add(f"{where}.effect", f"{shorten(effect)} is not a taint effect",
                  "use " + ", ".join(EFFECTS))
        if name:
            out.append(Toleration(key=name, operator=operator, value=val, effect=effect))
    return tuple(out)


def volume_path_problem(path: str) -> str | None:
    """Why ``path`` cannot be where a cluster volume is mounted (None when it can be)."""
    parts = path[1:].split("/") if path.startswith("/") else []
    if not parts or not all(PATH_PART_RE.fullmatch(p) for p in parts):
        return "is not an absolute, normalised path of letters, digits and . _ - @ +"
    if path in _RESERVED_MOUNTS or path.startswith(SYSTEM_TREES):
        return "is a system directory"
    return None


def _volumes(c: _Collector, key: str, value: Any) -> tuple[ClusterVolume, ...] | None:
    if value is None:
        return None
    out = []
    for name, raw in c.table(key, value).items():
        where = f"{key}.{name if len(name) <= 40 else shorten(name, 40)}"
        if not DNS_LABEL.fullmatch(name):
            c.add(where, "a volume's name is a lowercase DNS label",
                  'write e.g. [deploy.volumes.data]')
            continue
        table = c.table(where, raw)
        c.unknown_keys(f"{where}.", table, VOLUME_KEYS)
        claim = _pattern(c, f"{where}.claim", table.get("claim"), DNS_NAME, "a claim name",
                         "team-datasets")
        size = _pattern(c, f"{where}.size", table.get("size"), QUANTITY, "a size", "100Gi")
        if (claim is None) == (size is None):
            c.add(where, "a volume needs either claim (an existing PersistentVolumeClaim) or "
                  "size (a new one)", 'write claim = "team-datasets" or size = "100Gi"')
            continue
        path = c.string(f"{where}.path", table.get("path")) or f"/{name}"
        problem = volume_path_problem(path)
        if problem:
            c.add(f"{where}.path", f"{shorten(path)} {problem}", 'write e.g. path = "/data"')
            continue
        out.append(ClusterVolume(
            name=name, path=path, claim=claim, size=size,
            storage_class=_pattern(c, f"{where}.storage_class", table.get("storage_class"),
                                   DNS_NAME, "a storage class name", "fast-ssd"),
            read_only=c.boolean(f"{where}.read_only", table.get("read_only"))))
    paths = [v.path for v in out]
    if len(set(paths)) != len(paths):
        c.add(key, "two volumes are mounted at one path", "give each its own path")
    return tuple(sorted(out, key=lambda v: v.name))


def _secrets(c: _Collector, key: str, value: Any) -> tuple[tuple[str, str, str], ...] | None:
    if value is None:
        return None
    out = []
    for var, ref in parse_env(c, key, value):
        name, _, item = ref.partition("/")
        if not DNS_NAME.fullmatch(name) or not _SECRET_KEY.fullmatch(item):
            c.add(f"{key}.{var}", f"{shorten(ref)} is not SECRET/KEY (a reference, never "
                  "the value itself)", f'write {var} = "wandb/api-key": the key api-key of '
                  "the Secret wandb")
            continue
        out.append((var, name, item))
    return tuple(out)


def _flag(c: _Collector, key: str, value: Any) -> bool | None:
    return None if value is None else c.boolean(key, value)


def _level(c: _Collector, key: str, table: dict[str, Any], allowed: tuple[str, ...]) -> Deploy:
    c.unknown_keys(f"{key}.", table, allowed)
    service_type = c.string(f"{key}.service_type", table.get("service_type"))
    if service_type is not None and service_type not in SERVICE_TYPES:
        c.add(f"{key}.service_type", f"{shorten(service_type)} is not a Service type",
              "use " + ", ".join(SERVICE_TYPES) + " (ClusterIP unless the cluster must be "
              "reached from outside)")
        service_type = None
    quantities = {name: _pattern(c, f"{key}.{name}", table.get(name), QUANTITY,
                                 "a Kubernetes quantity", example)
                  for name, example in (("cpu", "4"), ("memory", "16Gi"), ("cpu_limit", "8"),
                                        ("memory_limit", "32Gi"), ("shm", "8Gi"))}
    return Deploy(
        namespace=_pattern(c, f"{key}.namespace", table.get("namespace"), DNS_LABEL,
                           "a namespace name", "ml-team"),
        service_account=_pattern(c, f"{key}.service_account", table.get("service_account"),
                                 DNS_NAME, "a service account name", "trainer"),
        service_account_token=_flag(c, f"{key}.service_account_token",
                                    table.get("service_account_token")),
        image_pull_secret=_pattern(c, f"{key}.image_pull_secret",
                                   table.get("image_pull_secret"), DNS_NAME, "a Secret's name",
                                   "registry-login"),
        queue=_pattern(c, f"{key}.queue", table.get("queue"), LABEL_VALUE, "a queue name",
                       "team-a"),
        priority_class=_pattern(c, f"{key}.priority_class", table.get("priority_class"),
                                DNS_NAME, "a PriorityClass name", "high"),
        scheduler=_pattern(c, f"{key}.scheduler", table.get("scheduler"), DNS_NAME,
                           "a scheduler name", "volcano"),
        node_selector=_labels(c, f"{key}.node_selector", table.get("node_selector")),
        gpu_product=_pattern(c, f"{key}.gpu_product", table.get("gpu_product"), LABEL_VALUE,
                             "a GPU product label value", "NVIDIA-H100-80GB-HBM3"),
        tolerations=_tolerations(c, f"{key}.tolerations", table.get("tolerations")),
        gpus=c.count(f"{key}.gpus", table.get("gpus"), 0, 64),
        workers=c.count(f"{key}.workers", table.get("workers"), 1, MAX_WORKERS),
        chief=_flag(c, f"{key}.chief", table.get("chief")),
        ps=c.count(f"{key}.ps", table.get("ps"), 0, 64),
        evaluator=_flag(c, f"{key}.evaluator", table.get("evaluator")),
        port=c.count(f"{key}.port", table.get("port"), 1024, 65535),
        service_type=service_type,
        volumes=_volumes(c, f"{key}.volumes", table.get("volumes")),
        env=None if table.get("env") is None else parse_env(c, f"{key}.env", table.get("env")),
        secrets=_secrets(c, f"{key}.secrets", table.get("secrets")),
        **quantities,
    )


def parse_deploy(c: _Collector, value: Any) -> DeployTable:
    table = c.table("deploy", value)
    shared = {k: v for k, v in table.items() if k not in PROFILE_TABLES}
    profiles = []
    for name in PROFILE_TABLES:
        if name in table:
            own = c.table(f"deploy.{name}", table[name])
            profiles.append((name, _level(c, f"deploy.{name}", own, DEPLOY_KEYS)))
    return DeployTable(shared=_level(c, "deploy", shared, (*DEPLOY_KEYS, *PROFILE_TABLES)),
                       profiles=tuple(profiles))
