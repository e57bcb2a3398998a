"""The lock file's name: what a project needs to find its lock, apart from the lock's model
and reader."""

from __future__ import annotations

LOCK_FILE = "dlenv.lock"
