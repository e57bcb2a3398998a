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

A run keeps two records: the image it readied for its profile, and the spec's run view
(``spec.view.RunView``, what ``plan_run`` reads), so that a run of an unchanged project
chooses its profile and plans its container without parsing the spec.

This module stays light (no spec parser, lock, image or rich imports): ``dlenv build
--load`` with nothing changed is the standard library, the team settings and one ``image
inspect``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dlenv.cache import default_cache_dir
from dlenv.config import Config
from dlenv.fsutil import Stat, canonical_json, first_file, stats, write_atomic
from dlenv.spec.view import RunView

if TYPE_CHECKING:
    from dlenv.engine.base import Engine

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
             alias: str | None, image_id: str, digest: str, result: dict[str, Any],
             scanned: Sequence[Stat] | None, settled: bool, warnings: Sequence[str]) -> bool:
    """Record a finished build (not one that wrote ``--output`` files) of the manifest
    ``digest`` in the store; False when its inputs moved while it ran or its files were too
    fresh to trust by their stats."""
    if options.outputs or not settled:
        return False
    return _write(before, "build", options, config, scanned or (), {
        "tag": tag, "alias": alias, "image": image_id, "digest": digest,
        "result": result, "warnings": list(warnings)})


def lookup(where: Path, options: BuildOptions, config: Config) -> Unchanged | None:
    """The recorded build for ``where`` (a project directory or its spec file) and
    ``options`` when nothing it depends on changed and the store (and Docker, for a load)
    still hold its image; else None (then the build runs)."""
    started = time.monotonic()
    record = None if options.outputs else _match(where, "build", options, config)
    if record is None or not _images(record) or not _stored(options, record):
        return None
    if options.load:
        from dlenv.engine.cli import unasked

        engine = unasked("docker")
        if engine is None or not _held(engine, record):
            return None
    result = record["result"]
    result = {**result, "layers": [{**x, "reused": True} for x in result["layers"]]}
    return Unchanged(tag=record["tag"], alias=record["alias"], image_id=record["image"],
                     result=result, warnings=tuple(record["warnings"]),
                     seconds=time.monotonic() - started)


@dataclass(frozen=True, slots=True)
class Current:
    """The image ``ready_image`` last readied for a run of the project's profile, answered
    from its record: the spec, lock and team settings as they were, the image in the store
    and the engine under its tags."""

    tag: str
    image_id: str
    cuda: bool  # the lock's target runs on a GPU (the run then reads the lock)


def _run_options(profile: str | None, cache_dir: str | None) -> BuildOptions:
    return BuildOptions(profile=profile, with_project=False, load=True, cache_dir=cache_dir)


def remember_run(before: Before, config: Config, *, profile: str | None,
                 cache_dir: str | None, tag: str, alias: str | None, image_id: str,
                 digest: str, cuda: bool, view: RunView) -> bool:
    """Record the image ``ready_image`` readied and loaded for a run (the project's files
    are mounted, not in the key: a current image is reused whatever they are), and the
    spec's run view."""
    return _write(before, "run", _run_options(profile, cache_dir), config, (), {
        "tag": tag, "alias": alias, "image": image_id, "digest": digest, "cuda": cuda}
        ) and _write(before, "view", _run_options(None, cache_dir), config, (),
                     {"view": view.to_json()})


def run_view(spec: Path, config: Config, *, cache_dir: str | None) -> RunView | None:
    """The spec's run view from the record a run left, when the spec, its lock and the
    team settings are as they were; else None (then the spec is parsed)."""
    record = _match(spec, "view", _run_options(None, cache_dir), config)
    try:
        return RunView.from_json(record["view"]) if record is not None else None
    except (KeyError, ValueError):
        return None


def run_image(spec: Path, config: Config, engine: Engine, *, profile: str | None,
              cache_dir: str | None) -> Current | None:
    """What ``ready_image`` would answer for a run in ``engine``, from its record, when
    nothing it depends on changed; else None (then ``ready_image`` runs)."""
    options = _run_options(profile, cache_dir)
    record = _match(spec, "run", options, config)
    if record is None or not _images(record) or not _stored(options, record) \
            or not _held(engine, record):
        return None
    return Current(tag=record["tag"], image_id=record["image"], cuda=bool(record["cuda"]))


def _write(before: Before, purpose: str, options: BuildOptions, config: Config,
           scanned: Sequence[Stat], fields: dict[str, Any]) -> bool:
    """Write a record for ``purpose`` unless an input moved while the work ran."""
    if _digests(before.paths) != before.digests:
        return False
    record = {
        "spec": str(before.spec), "candidates": list(before.candidates),
        "paths": [str(p) for p in before.paths], "stats": [s[0] for s in scanned],
        "key": _key(before.spec, purpose, options, config, before.digests, scanned),
        **fields}
    slot = _slot(before.spec.parent, purpose, options)
    try:
        slot.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(slot, canonical_json(record))
    except OSError:
        return False  # the work stands; the next one runs in full and records again
    return True


def _match(where: Path, purpose: str, options: BuildOptions, config: Config
           ) -> dict[str, Any] | None:
    """The record for ``where`` (a project directory or its spec file) when its key is the
    key of the inputs as they are now."""
    where = where.resolve()
    try:
        record = json.loads(_read(_slot(where.parent if where.is_file() else where, purpose,
                                        options)))
        spec = first_file(where, record["candidates"])  # the spec the work would read
        if spec is None or str(spec) != record["spec"]:
            return None
        paths = tuple(Path(p) for p in record["paths"])
        found = stats(spec.parent, record["stats"])
        key = _key(spec, purpose, options, config, _digests(paths), found)
        if record["key"] != key:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if isinstance(record, dict) else None


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


def _images(record: dict[str, Any]) -> bool:
    """Whether a record names an image as the build and run records do."""
    return all(isinstance(record.get(k), str) for k in ("tag", "image", "digest"))


def _stored(options: BuildOptions, record: dict[str, Any]) -> bool:
    """Whether the store still names the record's manifest as its tag, every blob passing
    the check a build's reuse makes (size and stamp; a damaged one is removed, and the
    work runs)."""
    from dlenv.oci.store import default_store

    store = default_store(options.cache_dir)
    digest = record["digest"]
    found = store.resolve(record["tag"])
    if found is None or found.digest != digest or not store.check(digest, found.size):
        return False
    doc = store.read_json(digest)
    blobs = [doc["config"], *doc["layers"]]
    return doc["config"]["digest"] == record["image"] and all(
        store.check(b["digest"], b["size"]) for b in blobs)


def _held(engine: Engine, record: dict[str, Any]) -> bool:
    """Whether ``engine`` holds the record's image under its tag and alias: one ``image``
    question, whose answer also shows the engine works."""
    found = engine.image(record["tag"])
    names = {record["tag"], *([record["alias"]] if record.get("alias") else [])}
    return found is not None and found.id == record["image"] and names <= set(found.tags)


def _key(spec: Path, purpose: str, options: BuildOptions, config: Config,
         digests: Sequence[str], scanned: Sequence[Stat]) -> str:
    from dlenv import __version__

    settings = repr(sorted((k, s.value) for k, s in config.settings.items()))
    cache = str(default_cache_dir(options.cache_dir).resolve())
    doc = {"dlenv": [__version__, _code()], "spec": str(spec), "purpose": purpose,
           "options": asdict(options),
           "files": list(digests), "config": settings, "cache": cache,
           "project": [list(s) for s in scanned]}
    return hashlib.sha256(canonical_json(doc)).hexdigest()


def _slot(directory: Path, purpose: str, options: BuildOptions) -> Path:
    name = hashlib.sha256(canonical_json([str(directory), purpose, asdict(options)])
                          ).hexdigest()[:32]
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
