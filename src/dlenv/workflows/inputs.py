"""A build's inputs: the options it is asked with, and a key over everything that decides
its image, so that the same build again answers from a record instead of building.

When a build of the store (and a load) ends, ``remember`` writes a record for the project's
directory and options: the key, over dlenv's own files, the options, the bytes of the spec,
the lock and the other spec candidates, the team's settings, the cache directory, and the
stat of every project file, link and directory the build read; and what the build made.
The next build computes the key again (``lookup``: a few small files hashed and some stats,
milliseconds, without parsing the spec or the lock or importing what builds) and, when it
matches, only asks the store and the engine whether they still hold that image under its
tags. Anything changed or missing, and the build runs as before. Stats stand in for the
project files' bytes, as in git's index; a scan that saw anything change within seconds of
it leaves no record, so an edit in the same timestamp cannot hide.

This module stays light (no spec, lock, image or rich imports): ``dlenv build --load`` with
nothing changed is the standard library, the team settings and one ``image inspect``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from dlenv.cache import default_cache_dir
from dlenv.config import Config
from dlenv.fsutil import Stat, canonical_json, first_file, stats, write_atomic

Compression = Literal["gzip", "zstd", "none"]
RECORDS = "unchanged"  # below the cache directory: one small JSON file per project and options
MAX_RECORD = 32 << 20  # the stats of a project of some 300,000 files


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildOptions:
    profile: str | None = None
    compression: Compression = "gzip"
    bytecode: bool = True
    with_project: bool = True  # copy the spec's directory into the workdir
    tag: str | None = None  # default NAME:PROFILE-<location id>, alias NAME:PROFILE
    outputs: tuple[str, ...] = ()  # "oci:DIR" or "docker-archive:FILE"
    load: bool = False  # into Docker
    frozen: bool = False  # fail instead of re-locking
    cache_dir: str | None = None


@dataclass(frozen=True, slots=True)
class Unchanged:
    """An unchanged build's answer: what the recorded build made, still in the store (and
    in Docker, when the build loads)."""

    tag: str
    alias: str | None
    image_id: str
    result: dict[str, Any]  # the recorded build's ``BuildResult.to_json()``
    warnings: tuple[str, ...]  # what that build warned of (credential-like files…)
    seconds: float


@dataclass(frozen=True, slots=True)
class Before:
    """The inputs read when a build starts; ``remember`` writes a record only when they
    read the same when it ends (an edit during the build leaves none)."""

    spec: Path
    candidates: tuple[str, ...]  # the names a directory's spec may have, the first found
    paths: tuple[Path, ...]  # files whose bytes count: the spec candidates and the lock
    digests: tuple[str, ...]


def start(spec: Path, lock: Path, candidates: Sequence[str]) -> Before:
    """The inputs' bytes as a build that reads ``spec`` and ``lock`` starts."""
    spec = spec.resolve()
    paths = tuple(dict.fromkeys((spec, lock.resolve(), *(spec.parent / n for n in candidates))))
    return Before(spec, tuple(candidates), paths, _digests(paths))


def remember(before: Before, options: BuildOptions, config: Config, *, tag: str,
             alias: str | None, image_id: str, result: dict[str, Any],
             scanned: Sequence[Stat] | None, settled: bool, warnings: Sequence[str]) -> bool:
    """Record a finished build (not one that wrote ``--output`` files); False when its
    inputs moved while it ran or its files were too fresh to trust by their stats."""
    if options.outputs or not settled or _digests(before.paths) != before.digests:
        return False
    record = {
        "spec": str(before.spec), "candidates": list(before.candidates),
        "paths": [str(p) for p in before.paths], "stats": [s[0] for s in scanned or ()],
        "key": _key(before.spec, options, config, before.digests, tuple(scanned or ())),
        "tag": tag, "alias": alias, "image": image_id, "result": result,
        "warnings": list(warnings)}
    slot = _slot(before.spec.parent, options)
    try:
        slot.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(slot, canonical_json(record))
    except OSError:
        return False  # the build stands; the next one runs in full and records again
    return True


def lookup(where: Path, options: BuildOptions, config: Config) -> Unchanged | None:
    """The recorded build for ``where`` (a project directory or its spec file) and
    ``options`` when nothing it depends on changed and the store (and Docker, for a load)
    still hold its image; else None (then the build runs)."""
    started = time.monotonic()
    if options.outputs:
        return None
    where = where.resolve()
    try:
        record = json.loads(_read(_slot(where.parent if where.is_file() else where, options)))
        spec = first_file(where, record["candidates"])  # the spec the build would read
        if spec is None or str(spec) != record["spec"]:
            return None
        paths = tuple(Path(p) for p in record["paths"])
        found = stats(spec.parent, record["stats"])
        if record["key"] != _key(spec, options, config, _digests(paths), found):
            return None
        tag, alias, image_id = record["tag"], record["alias"], record["image"]
        result, warnings = record["result"], tuple(record["warnings"])
        digest = str(result["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _stored(options, tag, digest, image_id):
        return None
    if options.load and not _loaded(tag, alias, image_id):
        return None
    result = {**result, "layers": [{**x, "reused": True} for x in result["layers"]]}
    return Unchanged(tag=tag, alias=alias, image_id=image_id, result=result,
                     warnings=warnings, seconds=time.monotonic() - started)


def prune(cache_dir: str | None, *, dry_run: bool = False) -> dict[str, int]:
    """Remove the records of builds whose spec file is gone (``gc``); name → size."""
    gone = {}
    for path in sorted((default_cache_dir(cache_dir) / RECORDS).glob("*.json")):
        try:
            spec = Path(json.loads(_read(path))["spec"])
        except (OSError, ValueError, KeyError, TypeError):
            spec = None  # unreadable: nothing can answer from it
        if spec is None or not spec.is_file():
            gone[path.stem] = path.stat().st_size
            if not dry_run:
                path.unlink(missing_ok=True)
    return gone


def _stored(options: BuildOptions, tag: str, digest: str, image_id: str) -> bool:
    """Whether the store still names ``digest`` as ``tag``, every blob passing the check a
    build's reuse makes (size and stamp; a damaged one is removed, and the build runs)."""
    from dlenv.oci.store import default_store

    store = default_store(options.cache_dir)
    found = store.resolve(tag)
    if found is None or found.digest != digest or not store.check(digest, found.size):
        return False
    doc = store.read_json(digest)
    blobs = [doc["config"], *doc["layers"]]
    return doc["config"]["digest"] == image_id and all(
        store.check(b["digest"], b["size"]) for b in blobs)


def _loaded(tag: str, alias: str | None, image_id: str) -> bool:
    """Whether Docker holds ``image_id`` under ``tag`` (and ``alias``): one ``image
    inspect``, whose answer also shows the daemon works."""
    from dlenv.engine.cli import unasked

    engine = unasked("docker")
    found = engine.image(tag) if engine is not None else None
    return found is not None and found.id == image_id and \
        {tag, *([alias] if alias else [])} <= set(found.tags)


def _key(spec: Path, options: BuildOptions, config: Config, digests: Sequence[str],
         scanned: Sequence[Stat]) -> str:
    from dlenv import __version__

    settings = repr(sorted((k, s.value) for k, s in config.settings.items()))
    cache = str(default_cache_dir(options.cache_dir).resolve())
    doc = {"dlenv": [__version__, _code()], "spec": str(spec), "options": asdict(options),
           "files": list(digests), "config": settings, "cache": cache,
           "project": [list(s) for s in scanned]}
    return hashlib.sha256(canonical_json(doc)).hexdigest()


def _slot(directory: Path, options: BuildOptions) -> Path:
    name = hashlib.sha256(canonical_json([str(directory), asdict(options)])).hexdigest()[:32]
    return default_cache_dir(options.cache_dir) / RECORDS / f"{name}.json"


def _digests(paths: Sequence[Path]) -> tuple[str, ...]:
    """Each file's sha256 ("" when it is not there)."""
    out = []
    for path in paths:
        try:
            with path.open("rb") as f:
                out.append(hashlib.file_digest(f, "sha256").hexdigest())
        except FileNotFoundError:
            out.append("")
    return tuple(out)


def _read(path: Path) -> bytes:
    """A record, refused when larger than any record is."""
    with path.open("rb") as f:
        data = f.read(MAX_RECORD + 1)
    if len(data) > MAX_RECORD:
        raise ValueError(f"{path} is larger than a record can be")
    return data


_CODE: list[list[Any]] = []


def _code() -> list[list[Any]]:
    """dlenv's own files, by stat: a change to any (a development checkout) changes what a
    build may make, though the version stays."""
    if not _CODE:
        root = Path(__file__).resolve().parent.parent
        for top, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                st = os.stat(os.path.join(top, name))
                _CODE.append([os.path.relpath(os.path.join(top, name), root), st.st_size,
                              st.st_mtime_ns])
    return _CODE
