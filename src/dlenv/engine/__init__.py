"""Container engines behind one interface: Docker and Podman, through their command lines.

Both CLIs take the same words for what dlenv does (load, run, volume, ps, stop, rm), so one
class serves both; only the GPU request differs, and ``dlenv.run`` decides that from
``Engine.kind``. The Docker SDK would add a dependency without covering Podman's CLI-only
features (CDI devices), so the CLIs are the interface."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlenv.engine.base import (
        BUILDX_VERSION,
        CAP_DROP,
        CONFINED,
        ENGINES,
        LABEL,
        NO_NEW_PRIVILEGES,
        Container,
        Engine,
        EngineImage,
        EngineKind,
        gpu_args,
        info_command,
        mount_option,
    )
    from dlenv.engine.cli import BUILDKIT_DOCKER, CliEngine, detect, detect_soon

# Names resolve on first use (PEP 562): a light submodule never runs the whole package.
_WHERE = {
    **dict.fromkeys(("BUILDX_VERSION", "CAP_DROP", "CONFINED", "ENGINES", "LABEL",
        "NO_NEW_PRIVILEGES", "Container", "Engine", "EngineImage", "EngineKind", "gpu_args",
        "info_command", "mount_option",), "dlenv.engine.base"),
    **dict.fromkeys(("BUILDKIT_DOCKER", "CliEngine", "detect", "detect_soon",),
        "dlenv.engine.cli"),
}
__all__ = [
    "BUILDKIT_DOCKER", "BUILDX_VERSION", "CAP_DROP", "CONFINED", "CliEngine", "Container",
    "ENGINES", "Engine", "EngineImage", "EngineKind", "LABEL", "NO_NEW_PRIVILEGES", "detect",
    "detect_soon", "gpu_args", "info_command", "mount_option",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
