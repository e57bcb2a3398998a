"""The frameworks dlenv knows and the PyPI distribution that carries each: what a spec needs
to name its framework, apart from the matrix (which is read only when a lock is made)."""

from __future__ import annotations

from typing import Literal

Framework = Literal["tensorflow", "pytorch", "jax"]
FRAMEWORKS: tuple[Framework, ...] = ("tensorflow", "pytorch", "jax")
DISTRIBUTION: dict[str, str] = {"tensorflow": "tensorflow", "pytorch": "torch", "jax": "jax"}
