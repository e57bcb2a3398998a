"""dlenv: one standard, reproducible container environment for deep-learning teams."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlenv.errors import DlenvError, ResolveError, SpecError
    from dlenv.lock import Lock, read_lock
    from dlenv.resolve import Target, resolve_target
    from dlenv.spec import Spec, load_spec

__version__ = "0.1.0"

# The face's names resolve on first use (PEP 562): every command imports some submodule,
# and importing the package first must not pull in the spec parser, the lock reader and the
# resolver with it (that was a third of each command's start-up).
_WHERE = {
    "DlenvError": "dlenv.errors", "ResolveError": "dlenv.errors", "SpecError": "dlenv.errors",
    "Lock": "dlenv.lock", "read_lock": "dlenv.lock",
    "Target": "dlenv.resolve", "resolve_target": "dlenv.resolve",
    "Spec": "dlenv.spec", "load_spec": "dlenv.spec",
}
__all__ = [
    "DlenvError", "Lock", "ResolveError", "Spec", "SpecError", "Target", "__version__",
    "load_spec", "read_lock", "resolve_target",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'dlenv' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
