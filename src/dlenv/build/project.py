"""The project's own files: what of the spec's directory goes into the image's workdir.

A ``.dlenvignore`` (or, when there is none, a ``.dockerignore``) excludes paths with
gitignore-style patterns (``pathspec`` implements them). Version control data, caches, the
spec and the lock are never copied: the spec and the lock are in the image's labels, and
leaving them out keeps a package change from also changing the project layer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from dlenv.cache import sha256_file

IGNORE_FILES = (".dlenvignore", ".dockerignore")
ALWAYS_IGNORED = (".git/", ".hg/", ".svn/", "__pycache__/", "*.pyc", ".venv/",
                  ".ipynb_checkpoints/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/",
                  "/dlenv.toml", "/dlenv.lock", "/.dlenvignore", "/.dockerignore")


@dataclass(frozen=True, slots=True, order=True)
class ProjectFile:
    path: str  # relative to the project directory, '/'-separated
    sha256: str
    size: int
    executable: bool
    link: str | None = None  # a symbolic link's target (kept as a link)


def user_ignores(directory: Path) -> list[str]:
    """The project's own ignore rules: .dlenvignore, else .dockerignore (not one dlenv
    rendered, which repeats ALWAYS_IGNORED)."""
    for name in IGNORE_FILES:
        path = directory / name
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            if lines and lines[0].startswith(RENDERED_MARK):
                return [x for x in lines[1:] if x not in ALWAYS_IGNORED and x != GENERATED]
            return lines
    return []


def ignore_spec(directory: Path) -> pathspec.GitIgnoreSpec:
    # .dlenv/ holds what `dlenv dockerfile` generated: never project code.
    return pathspec.GitIgnoreSpec.from_lines(
        [*ALWAYS_IGNORED, GENERATED, *user_ignores(directory)])

RENDERED_MARK = "# Rendered by dlenv"
GENERATED = "/.dlenv/"


def _walk(directory: Path, ignore: pathspec.GitIgnoreSpec, rel: str = "") -> Iterator[str]:
    for entry in sorted(os.scandir(directory / rel if rel else directory), key=lambda e: e.name):
        path = f"{rel}/{entry.name}" if rel else entry.name
        if entry.is_dir(follow_symlinks=False):
            if not ignore.match_file(path + "/"):
                yield from _walk(directory, ignore, path)
        elif not ignore.match_file(path):
            yield path


def collect_project(directory: Path) -> tuple[ProjectFile, ...]:
    """Every file of the project that the image gets, with its hash (sorted by path)."""
    ignore = ignore_spec(directory)
    out = []
    for rel in _walk(directory, ignore):
        full = directory / rel
        if full.is_symlink():
            out.append(ProjectFile(rel, "", 0, False, link=os.readlink(full)))
        elif full.is_file():
            st = full.stat()
            out.append(ProjectFile(rel, sha256_file(full), st.st_size, bool(st.st_mode & 0o111)))
    return tuple(out)
