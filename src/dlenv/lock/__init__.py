"""``dlenv.lock``: every wheel, .deb and base image pinned by hash, in canonical TOML.

The lock is written so that the same resolution gives the same bytes (sorted tables, no
timestamps of its own), and read strictly, naming the entry and field of any problem."""

from __future__ import annotations

from dlenv.lock.file import MAX_EPOCH, MAX_LOCK_BYTES, dumps, loads, read_lock, write_lock
from dlenv.lock.model import (
    LOCK_FILE,
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

__all__ = [
    "LOCK_FILE", "LOCK_VERSION", "Lock", "LockedBase", "LockedDeb", "LockedSdist",
    "LockedTarget", "LockedWheel", "MAX_EPOCH", "MAX_LOCK_BYTES", "TARGET_FIELDS",
    "TARGET_LISTS", "ZIP_EPOCH", "dumps", "loads", "read_lock", "write_lock",
]
