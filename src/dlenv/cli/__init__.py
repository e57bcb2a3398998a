"""The ``dlenv`` command: parser, thin commands and renderers over ``dlenv.workflows``."""

from __future__ import annotations

from dlenv.cli.main import entry, main

__all__ = ["entry", "main"]
