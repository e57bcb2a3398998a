"""The compatibility matrix: which framework release runs on which Python, CUDA and driver.

The numbers live in ``matrix.toml`` (data with sources); ``matrix.py`` turns them into frozen
records and answers the questions resolve and doctor ask. The framework names
(``names.py``) load at once; the rest resolves on first use (PEP 562), so a spec names its
framework without the matrix."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dlenv.compat.names import DISTRIBUTION, FRAMEWORKS, Framework

if TYPE_CHECKING:
    from dlenv.compat.matrix import (
        KNOWN_ARCHS,
        CudaOption,
        CudaSource,
        Matrix,
        Release,
        RuntimeRule,
        Suite,
        load_matrix,
        parse_matrix,
    )

_MATRIX = frozenset(("CudaOption", "CudaSource", "KNOWN_ARCHS", "Matrix", "Release",
                     "RuntimeRule", "Suite", "load_matrix", "parse_matrix"))
__all__ = [
    "CudaOption", "CudaSource", "DISTRIBUTION", "FRAMEWORKS", "Framework", "KNOWN_ARCHS",
    "Matrix", "Release", "RuntimeRule", "Suite", "load_matrix", "parse_matrix",
]


def __getattr__(name: str) -> Any:
    if name not in _MATRIX:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("dlenv.compat.matrix"), name)
