"""Checks that ``doctor`` and ``verify`` report and that ``run`` reads: one shape, one order.

Bottom layer: no dlenv imports, so every stage may use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

Status = Literal["ok", "warn", "fail", "skip"]
OK: Final = "ok"
WARN: Final = "warn"
FAIL: Final = "fail"
SKIP: Final = "skip"
_SEVERITY: dict[Status, int] = {SKIP: 0, OK: 0, WARN: 1, FAIL: 2}


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    status: Status
    summary: str
    evidence: str = ""
    fix: str = ""


def worst(checks: Sequence[Check]) -> Status:
    """The most severe status among ``checks`` (skipped ones count as passed)."""
    return max((c.status for c in checks), key=lambda s: _SEVERITY[s], default=OK)
