from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a dlenv.toml into a fresh directory and return that directory."""

    def write(text: str, name: str = "dlenv.toml") -> Path:
        (tmp_path / name).write_text(text)
        return tmp_path

    return write
