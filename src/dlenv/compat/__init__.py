"""The compatibility matrix: which framework release runs on which Python, CUDA and driver.

The numbers live in ``matrix.toml`` (data with sources); this module turns them into frozen
records and answers the questions resolve and doctor ask."""

from __future__ import annotations

from dlenv.compat.matrix import (
    DISTRIBUTION,
    FRAMEWORKS,
    KNOWN_ARCHS,
    CudaOption,
    CudaSource,
    Framework,
    Matrix,
    Release,
    RuntimeRule,
    Suite,
    load_matrix,
    parse_matrix,
)

__all__ = [
    "CudaOption", "CudaSource", "DISTRIBUTION", "FRAMEWORKS", "Framework", "KNOWN_ARCHS",
    "Matrix", "Release", "RuntimeRule", "Suite", "load_matrix", "parse_matrix",
]
