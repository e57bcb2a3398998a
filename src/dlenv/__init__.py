"""dlenv: one standard, reproducible container environment for deep-learning teams."""

from dlenv.errors import DlenvError, ResolveError, SpecError
from dlenv.lock import Lock, read_lock
from dlenv.resolve import Target, resolve_target
from dlenv.spec import Spec, load_spec

__version__ = "0.1.0"
__all__ = [
    "DlenvError", "Lock", "ResolveError", "Spec", "SpecError", "Target", "__version__",
    "load_spec", "read_lock", "resolve_target",
]
