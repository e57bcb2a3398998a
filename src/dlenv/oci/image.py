"""Image config and manifest, built as pure data from layers and settings."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dlenv.fsutil import canonical_json
from dlenv.oci import MT_CONFIG, MT_MANIFEST, Descriptor, LayerBlob


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageConfig:
    user: str  # "1000:1000"
    env: tuple[tuple[str, str], ...]
    workdir: str
    cmd: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    exposed_ports: tuple[int, ...] = ()


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def config_json(config: ImageConfig, layers: Sequence[LayerBlob], epoch: int,
                base: Mapping[str, Any] | None = None) -> bytes:
    """The image config; ``base`` is a registry base image's config whose layers come first."""
    base_diff_ids = list((base or {}).get("rootfs", {}).get("diff_ids", []))
    base_history = list((base or {}).get("history", []))
    created = rfc3339(epoch)
    # A registry base's own variables stay unless the spec sets the same name.
    base_env = [e.split("=", 1) for e in (base or {}).get("config", {}).get("Env", []) or []]
    env = dict((k, v) for k, v in base_env) | dict(config.env)
    cfg: dict[str, Any] = {
        "User": config.user,
        "Env": [f"{k}={v}" for k, v in env.items()],
        "WorkingDir": config.workdir,
        "Cmd": list(config.cmd),
        "Labels": dict(sorted(config.labels.items())),
    }
    if config.exposed_ports:
        cfg["ExposedPorts"] = {f"{p}/tcp": {} for p in sorted(config.exposed_ports)}
    return canonical_json({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": base_diff_ids + [x.diff_id for x in layers]},
        "history": base_history + [
            {"created": created, "created_by": f"dlenv: {x.name}", "comment": "dlenv"}
            for x in layers
        ],
    })


def manifest_json(config: Descriptor, layers: Sequence[Descriptor],
                  annotations: Mapping[str, str]) -> bytes:
    return canonical_json({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": config.to_json(),
        "layers": [x.to_json() for x in layers],
        "annotations": dict(sorted(annotations.items())),
    })


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """Each layer's chain id (OCI image spec): the layer together with every layer below it,
    which is how engines key the layers they hold."""
    chains: list[str] = []
    for diff_id in diff_ids:
        chains.append(diff_id if not chains else "sha256:" + hashlib.sha256(
            f"{chains[-1]} {diff_id}".encode()).hexdigest())
    return chains


def config_descriptor(data: bytes) -> Descriptor:
    return Descriptor(media_type=MT_CONFIG, digest="sha256:" + hashlib.sha256(data).hexdigest(),
                      size=len(data))
