"""Plan an image from a lock (pure), then build it natively into the OCI store.

``plan_build`` decides layers, config and labels from the lock alone. ``NativeBuilder``
executes a plan: it fetches what the layers need, writes each layer once (a layer whose
plan is unchanged is reused from the store without recompressing), and tags the image.

The package exports the plan only; the builder is ``dlenv.image.builder``, imported by the
commands that build, so that the others start without it. Names resolve on first use
(PEP 562): the project's files never load the plan (or the lock)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlenv.image.plan import (
        BIG_WHEEL,
        BUCKETS,
        DEFAULT_PATH,
        LAYER_EPOCH,
        LAYER_FORMAT,
        MAX_OWN_LAYERS,
        PROFILE_BUCKETS,
        RUN_SUFFIX,
        SYSTEM_LIBS,
        BuildPlan,
        LayerKind,
        LayerPlan,
        lock_digest,
        plan_build,
        plan_cuda_links,
        plan_wheel_layers,
    )

_WHERE = {
    **dict.fromkeys(("BIG_WHEEL", "BUCKETS", "BuildPlan", "DEFAULT_PATH", "LAYER_EPOCH",
        "LAYER_FORMAT", "LayerKind", "LayerPlan", "MAX_OWN_LAYERS", "PROFILE_BUCKETS",
        "RUN_SUFFIX", "SYSTEM_LIBS", "lock_digest", "plan_build", "plan_cuda_links",
        "plan_wheel_layers"), "dlenv.image.plan"),
}
__all__ = [
    "BIG_WHEEL", "BUCKETS", "BuildPlan", "DEFAULT_PATH", "LAYER_EPOCH", "LAYER_FORMAT",
    "LayerKind", "LayerPlan", "MAX_OWN_LAYERS", "PROFILE_BUCKETS", "RUN_SUFFIX",
    "SYSTEM_LIBS", "lock_digest", "plan_build", "plan_cuda_links",
    "plan_wheel_layers",
]

def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
