"""Resolve a Spec into a Target: Python, base suite, wheel platform, CUDA, driver floor.

``resolve_target`` is pure: it reads the spec and the matrix, never the host. Every choice
is recorded as a ``Decision`` with its reason so ``dlenv resolve`` can explain itself."""

from __future__ import annotations

from dlenv.resolve.target import PLATFORM, Choice, Decision, Target, resolve_target

__all__ = [
    "Choice", "Decision", "PLATFORM", "Target", "resolve_target",
]
