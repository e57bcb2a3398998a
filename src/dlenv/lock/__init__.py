"""``dlenv.lock``: every wheel, .deb and base image pinned by hash, in canonical TOML.

The lock is written so that the same resolution gives the same bytes (sorted tables, no
timestamps of its own), and read strictly, naming the entry and field of any problem.
``LOCK_FILE`` (``names.py``) loads at once; the other names resolve on first use (PEP 562),
so the model loads without the reader, and a project names its lock file without either."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dlenv.lock.names import LOCK_FILE

if TYPE_CHECKING:
    from dlenv.lock.file import MAX_EPOCH, MAX_LOCK_BYTES, dumps, loads, read_lock, write_lock
    from dlenv.lock.model import (
        LOCK_VERSION,
        TARGET_FIELDS,
        TARGET_LISTS,
        ZIP_EPOCH,
        Lock,
        LockedBase,
        LockedDeb,
        LockedSdist,
        LockedTarget,
        LockedWheel,
    )

_WHERE = {
    **dict.fromkeys(("MAX_EPOCH", "MAX_LOCK_BYTES", "dumps", "loads", "read_lock",
        "write_lock"), "dlenv.lock.file"),
    **dict.fromkeys(("LOCK_VERSION", "TARGET_FIELDS", "TARGET_LISTS",
        "ZIP_EPOCH", "Lock", "LockedBase", "LockedDeb", "LockedSdist", "LockedTarget",
        "LockedWheel"), "dlenv.lock.model"),
}
__all__ = [
    "LOCK_FILE", "LOCK_VERSION", "Lock", "LockedBase", "LockedDeb", "LockedSdist",
    "LockedTarget", "LockedWheel", "MAX_EPOCH", "MAX_LOCK_BYTES", "TARGET_FIELDS",
    "TARGET_LISTS", "ZIP_EPOCH", "dumps", "loads", "read_lock", "write_lock",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
