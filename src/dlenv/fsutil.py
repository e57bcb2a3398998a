"""Small helpers every layer uses: atomic writes, canonical JSON, paths kept inside a tree,
temporary names a later run can clean up, and values shortened for messages.

This module sits at the bottom: it imports nothing of dlenv but ``errors``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from dlenv.errors import BuildError, UsageError


def canonical_json(data: Any, *, ascii_only: bool = False) -> bytes:
    """The one JSON encoding dlenv hashes and writes: sorted keys, no spaces, UTF-8.
    ``ascii_only`` escapes other characters (the spec's digest has always been taken so)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=ascii_only).encode()


# Temporary names carry the writing process's id, so a later run can tell a leftover of a
# killed process (removed) from the work of one still running (kept).
TEMP_MARK = "dlenv-tmp"


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new, never half.
    The file keeps the owner and mode it had (root re-locking a user's project leaves the
    lock the user's); a new file gets ``mode`` (default 0644: mkstemp alone would leave 0600,
    a lock only root can read) and, when root writes it, the owner of its directory. An
    explicit ``mode`` (a secret's 0600) always applies."""
    try:
        before = path.stat()
    except FileNotFoundError:
        before = None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode is None and before is not None:
            os.fchmod(fd, stat.S_IMODE(before.st_mode))
        else:
            os.fchmod(fd, (0o644 if mode is None else mode) & ~_umask())
        if os.geteuid() == 0:
            owner = before or path.parent.stat()
            os.fchown(fd, owner.st_uid, owner.st_gid)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def ensure_dir(path: Path, what: str, mode: int = 0o777) -> Path:
    """``path`` as a directory (made when missing); a file in the way is a ``UsageError``
    naming ``what`` it is for, not a traceback."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=mode)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"{what} {path} is under a file, not a directory",
                         fix="pass --cache-dir (or DLENV_CACHE_DIR) a directory") from None
    return path


def temp_prefix(what: str) -> str:
    """A prefix for a temporary file or directory that ``sweep`` can attribute to its owner."""
    return f".{TEMP_MARK}-{os.getpid()}-{what}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


SHM = Path("/dev/shm")


def _mem_available(meminfo: Path = Path("/proc/meminfo")) -> int:
    """MemAvailable in bytes (0 when unknown): no library reads it without a dependency."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def scratch_dir(fallback: Path, need: int, environ: dict[str, str] | None = None,
                shm: Path = SHM, meminfo: Path = Path("/proc/meminfo")) -> Path:
    """Where a temporary tree of about ``need`` bytes goes: ``DLENV_SCRATCH_DIR`` when set,
    else memory (``/dev/shm``) when it and the machine have room for four times that, else
    ``fallback``. Creating TensorFlow's 25,000 files on a journalled disk took 6-12 s here,
    on tmpfs 5 s."""
    env = os.environ if environ is None else environ
    chosen = env.get("DLENV_SCRATCH_DIR")
    if chosen:
        if not Path(chosen).is_dir():
            raise UsageError(f"DLENV_SCRATCH_DIR={chosen} is not a directory",
                             fix="point it at an existing directory, or unset it")
        return Path(chosen)
    with contextlib.suppress(OSError):
        free = os.statvfs(shm)
        if free.f_bavail * free.f_frsize >= 4 * need and _mem_available(meminfo) >= 4 * need:
            return shm
    return fallback


def tree_size(path: Path) -> int:
    """Bytes a file or directory tree takes (files' sizes; links not followed)."""
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_size if path.exists() or path.is_symlink() else 0
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir() or p.is_symlink())


def sweep(directory: Path, min_age: float = 60.0) -> dict[str, int]:
    """Remove what killed dlenv processes left in ``directory`` (temporary trees and
    partial files); keep those of live processes and anything younger than ``min_age``.
    What was removed, with sizes."""
    removed: dict[str, int] = {}
    marker = f".{TEMP_MARK}-"
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not entry.name.startswith(marker):
            continue
        pid_text = entry.name[len(marker):].split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            if now - entry.stat(follow_symlinks=False).st_mtime < min_age:
                continue
            size = tree_size(Path(entry.path))
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
            removed[entry.name] = size
    return removed


def inside(root: Path, rel: str | PurePosixPath, *, follow_last: bool = False,
           max_links: int = 40) -> Path:
    """``root/rel``, resolved as if ``root`` were ``/`` (absolute symlinks in the tree point
    into the tree, as they will in the container), refused when it leaves the tree.

    ``os.path.realpath`` resolves against the host's ``/``, and tarfile's extraction filters
    only check one member at a time, so the walk over the tree's own links is done here.
    The last component is followed only with ``follow_last`` (to read what a link names);
    otherwise writing there replaces a link, never its target.
    """
    parts = [p for p in PurePosixPath(str(rel)).parts if p not in ("/", "", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if not resolved:
                raise BuildError(f"{rel}: the path leaves the image's file system",
                                 fix="paths in a spec, lock or package stay inside the image")
            resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if (parts or follow_last) and candidate.is_symlink():
            links += 1
            if links > max_links:
                raise BuildError(f"{rel}: too many symbolic links in the image's tree")
            target = PurePosixPath(os.readlink(candidate))
            if target.is_absolute():
                resolved = []
            parts = [p for p in target.parts if p not in ("/", "", ".")] + parts
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def shorten(value: object, limit: int = 80) -> str:
    """``repr`` of a value for a message, cut in the middle when long."""
    text = repr(value)
    if len(text) <= limit:
        return text
    keep = (limit - 5) // 2
    return f"{text[:keep]} … {text[-keep:]} ({len(text)} characters)"


# (path, inode, size, mtime ns, ctime ns): what shows a file changed without reading it.
Stat = tuple[str, int, int, int, int]


def stat_of(rel: str, path: Path) -> Stat:
    """``path``'s stat (of a link itself) under the name ``rel``; inode -1 when absent."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return (rel, -1, 0, 0, 0)
    return (rel, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def stats(directory: Path, paths: Iterable[str]) -> tuple[Stat, ...]:
    """The stats of ``paths``, relative to ``directory``."""
    return tuple(stat_of(rel, directory / rel) for rel in paths)


def first_file(path: Path, names: Sequence[str]) -> Path | None:
    """``path`` when it is a file, else the first of ``names`` that is a file in it."""
    if path.is_file():
        return path
    return next((c for c in (path / n for n in names) if c.is_file()), None)


def location_id(directory: str) -> str:
    """A short, stable id of a project's directory (an absolute path): it tells apart the
    images, containers and volumes of two checkouts of one project on a shared machine."""
    return hashlib.sha256(directory.encode()).hexdigest()[:8]
