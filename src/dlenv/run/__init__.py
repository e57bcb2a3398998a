"""Development containers as plans: ``plan_run`` decides everything a container gets (user,
mounts, volumes, ports, limits, GPU, labels, generated files) from the spec, the options and a
few host facts, without I/O. ``dlenv.run.launch`` carries a plan out through an engine. Rules
every plan keeps: never privileged, every capability dropped, no-new-privileges, a
non-root user, ports published on 127.0.0.1 unless the user asked for ``expose``, and secrets
(Jupyter's token, SSH keys, the host's CA bundle) mounted read-only, never in the command
line, the environment or an image layer."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlenv.engine.base import PIDS_LIMIT
    from dlenv.run.plan import (
        CA_PATH,
        GIB,
        JUPYTER_CONFIG,
        MODES,
        RUN_DIR,
        SSHD_KEYS,
        Host,
        Mode,
        Mount,
        Port,
        RunFile,
        RunOptions,
        RunPlan,
        Volume,
        choose_profile,
        container_name,
        decide_gpus,
        default_shm,
        files_dir,
        plan_run,
        volume_name,
    )
    from dlenv.spec import JUPYTER_PORT, SSH_PORT

# Names resolve on first use (PEP 562): a light submodule never runs the whole package.
_WHERE = {
    **dict.fromkeys(("CA_PATH", "GIB", "JUPYTER_CONFIG", "MODES", "RUN_DIR", "SSHD_KEYS",
        "Host", "Mode", "Mount", "Port", "RunFile", "RunOptions", "RunPlan", "Volume",
        "choose_profile", "container_name", "decide_gpus", "default_shm", "files_dir",
        "plan_run", "volume_name",), "dlenv.run.plan"),
    "PIDS_LIMIT": "dlenv.engine.base", "JUPYTER_PORT": "dlenv.spec", "SSH_PORT": "dlenv.spec",
}
__all__ = [
    "CA_PATH", "GIB", "Host", "JUPYTER_CONFIG", "JUPYTER_PORT", "MODES", "Mode", "Mount",
    "PIDS_LIMIT", "Port", "RUN_DIR", "RunFile", "RunOptions", "RunPlan", "SSHD_KEYS", "SSH_PORT",
    "Volume", "choose_profile", "container_name", "decide_gpus", "default_shm", "files_dir",
    "plan_run", "volume_name",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
