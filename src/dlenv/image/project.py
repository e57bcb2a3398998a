"""The project's own files: what of the spec's directory goes into the image's workdir.

``.dockerignore`` and ``.dlenvignore`` (read in that order, so the second can re-include
with ``!``) exclude paths with gitignore-style patterns (``pathspec`` implements them).
Version control data, caches, the spec and the lock are never copied: the spec and the lock
are in the image's labels, and leaving them out keeps a package change from also changing
the project layer. Files that usually hold credentials (``.env``, private keys, ``.ssh/``,
cloud and registry logins) are left out too unless an ignore file re-includes them, and then
``credential_like`` names them so the user is warned.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from dlenv.cache import sha256_file
from dlenv.fsutil import Stat, stat_of, stats

if TYPE_CHECKING:
    import pathspec

IGNORE_FILES = (".dockerignore", ".dlenvignore")  # both apply; the later one wins
# Where keys and logins live in a checkout; an image layer is readable by anyone who pulls it.
SECRET_PATTERNS = (
    ".env", ".env.*", "!.env.example", "!.env.sample", "!.env.template", "*.pem", "*.key",
    "*.p12", "*.pfx", "*.jks", "*.keystore", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    "!*.pub", ".ssh/", ".aws/", ".azure/", ".gnupg/", ".kube/", ".docker/config.json",
    ".netrc", ".pypirc", ".npmrc", ".git-credentials", "credentials.json",
    "service-account*.json", "*.tfstate")
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
    """The project's own ignore rules: .dockerignore's, then .dlenvignore's (of a
    .dockerignore that dlenv rendered, only what it carried over from the project)."""
    out: list[str] = []
    for name in IGNORE_FILES:
        path = directory / name
        if path.is_file():
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            if lines and lines[0].startswith(RENDERED_MARK):
                lines = [x for x in lines[1:] if x not in (*ALWAYS_IGNORED, *SECRET_PATTERNS)
                         and x != GENERATED]
            out += lines
    return out


def ignore_spec(directory: Path) -> pathspec.GitIgnoreSpec:
    import pathspec  # only where a project's files are read (15 ms to import)

    # .dlenv/ holds what `dlenv dockerfile` generated: never project code.
    return pathspec.GitIgnoreSpec.from_lines(
        [*ALWAYS_IGNORED, *SECRET_PATTERNS, GENERATED, *user_ignores(directory)])


@cache
def _secrets() -> pathspec.GitIgnoreSpec:
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(SECRET_PATTERNS)


def credential_like(files: tuple[ProjectFile, ...]) -> list[str]:
    """Paths among ``files`` that look like credentials (an ignore file re-included them)."""
    return [f.path for f in files if _secrets().match_file(f.path)]

RENDERED_MARK = "# Rendered by dlenv"
GENERATED = "/.dlenv/"


def _walk(directory: Path, ignore: pathspec.GitIgnoreSpec, rel: str = "",
          seen: list[Stat] | None = None) -> Iterator[str]:
    """The paths the image gets, sorted; each directory read is added to ``seen`` with its
    stat taken before it is listed (an entry added later changes that stat)."""
    here = directory / rel if rel else directory
    if seen is not None:
        seen.append(stat_of(rel or ".", here))
    for entry in sorted(os.scandir(here), key=lambda e: e.name):
        path = f"{rel}/{entry.name}" if rel else entry.name
        if entry.is_dir(follow_symlinks=False):
            if not ignore.match_file(path + "/"):
                yield from _walk(directory, ignore, path, seen)
        elif not ignore.match_file(path):
            yield path


@dataclass(frozen=True, slots=True)
class Scanned:
    """The project's files, and the stat of everything read to find them: each file and
    link (taken before it was hashed), each directory walked, and the ignore files. The same
    stats later mean the same files, as git's index trusts them, unless a change could have
    hidden in the same timestamp: ``settled`` is False when anything changed that shortly
    before the scan."""

    files: tuple[ProjectFile, ...]
    stats: tuple[Stat, ...]
    settled: bool


# How long before a scan a change must be for its stat to be trusted: past the clock's step
# (a few ms where timestamps have nanoseconds), or past a whole-second file system's (FAT: 2 s).
SETTLE_NS, FINE_SETTLE_NS = 3_000_000_000, 50_000_000


def scan_project(directory: Path) -> Scanned:
    """Every file of the project that the image gets, with its hash (sorted by path), and
    the stats that show later whether any of it changed."""
    started = time.time_ns()
    seen = list(stats(directory, IGNORE_FILES))  # before they are read
    ignore = ignore_spec(directory)
    out = []
    for rel in _walk(directory, ignore, seen=seen):
        full = directory / rel
        seen.append(stat_of(rel, full))
        if full.is_symlink():
            out.append(ProjectFile(rel, "", 0, False, link=os.readlink(full)))
        elif full.is_file():
            st = full.stat()
            out.append(ProjectFile(rel, sha256_file(full), st.st_size, bool(st.st_mode & 0o111)))
    return Scanned(tuple(out), tuple(seen),
                   settled(seen, started, wide=SETTLE_NS, fine=FINE_SETTLE_NS))


def settled(seen: Iterable[Stat], started: int, *, wide: int, fine: int) -> bool:
    """Whether every change ``seen`` was made long enough before ``started`` (ns) that a
    later one must show in the stat: by the ``wide`` margin when any timestamp is whole
    seconds (a file system without finer ones), else by the ``fine`` one."""
    there = [s for s in seen if s[1] >= 0]
    coarse = any(s[3] % 1_000_000_000 == 0 and s[4] % 1_000_000_000 == 0 for s in there)
    margin = wide if coarse else fine
    return all(max(s[3], s[4]) < started - margin for s in there)


def collect_project(directory: Path) -> tuple[ProjectFile, ...]:
    """Every file of the project that the image gets, with its hash (sorted by path)."""
    return scan_project(directory).files
