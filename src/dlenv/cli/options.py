"""Options many commands share, and how a command names the function that runs it."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable


def command(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """``dlenv.cli.MODULE.NAME``, imported when the command runs: a command loads only the
    workflows it uses, which keeps every command's start-up short."""
    def run(args: argparse.Namespace) -> int:
        func: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(f"dlenv.cli.{module}"), name)
        return func(args)
    return run


def project_dir(s: argparse.ArgumentParser, default: str | None = ".") -> None:
    s.add_argument("dir", nargs="?", default=default, metavar="DIR",
                   help="the project: a directory with dlenv.toml or a pyproject.toml with "
                        "[tool.dlenv] (default: the current directory)")


def cache_dir(s: argparse.ArgumentParser) -> None:
    s.add_argument("--cache-dir", metavar="DIR", help="downloads, layers and the image store "
                   "(default: $DLENV_CACHE_DIR, else the user cache directory)")


def frozen(s: argparse.ArgumentParser) -> None:
    s.add_argument("--frozen", action="store_true",
                   help="fail when the lock is missing or stale, instead of re-locking")


def json_flag(s: argparse.ArgumentParser) -> None:
    s.add_argument("--json", action="store_true", help="print the result as JSON for machines")
