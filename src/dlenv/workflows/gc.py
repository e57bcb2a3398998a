"""``gc``: give back the space dlenv's own files and images take and no longer need.

What goes: store tags built for project directories that are gone, the store blobs no tag
reaches, layer records whose blob went with them, unpacked base trees no record uses (and
the bytecode their interpreters compiled), the temporary trees and partial files of killed
builds, the engine's dangling images that dlenv loaded (a container still using one keeps
it), and what a killed ``dlenv train`` left in the engine: its workers that have stopped,
then its network. Downloads (wheels, .debs) stay unless asked: they are what makes the next
build fast, and a lock names them by hash."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dlenv.cache import default_cache_dir
from dlenv.engine import LABEL, Engine, EngineKind, detect
from dlenv.errors import EngineError, SpecError
from dlenv.fsutil import sweep, tree_size
from dlenv.image.records import LayerRecords
from dlenv.oci.store import default_store
from dlenv.spec import find_spec_file
from dlenv.workflows import inputs

Kind = Literal["store tag", "store blob", "layer record", "base tree", "bytecode cache",
               "build record", "temporary", "engine image", "engine container", "engine network",
               "download"]


@dataclass(frozen=True, slots=True)
class Freed:
    kind: Kind
    name: str
    size: int  # bytes

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "bytes": self.size}


def _project_gone(directory: str) -> bool:
    try:
        find_spec_file(Path(directory))
    except (SpecError, OSError):
        return True
    return False


@dataclass(frozen=True, slots=True)
class Collected:
    freed: tuple[Freed, ...]
    engine: str | None  # the engine whose images were looked at (none answered: None)
    dry_run: bool

    @property
    def size(self) -> int:
        return sum(f.size for f in self.freed)


def gc(*, cache_dir: str | None = None, engine_kind: EngineKind | None = None,
       use_engine: bool = True, downloads: bool = False, dry_run: bool = False) -> Collected:
    """Collect (or with ``dry_run``, list) what dlenv no longer needs."""
    engine: Engine | None = None
    if use_engine:
        try:
            engine = detect(engine_kind)
        except EngineError:
            if engine_kind is not None:
                raise
    return Collected(tuple(_collect(cache_dir, engine, downloads, dry_run)),
                     engine.kind if engine else None, dry_run)


def _collect(cache_dir: str | None, engine: Engine | None, downloads: bool,
             dry_run: bool) -> list[Freed]:
    root = default_cache_dir(cache_dir)
    freed: list[Freed] = []
    store = default_store(root)
    gone = {tag for tag, where in store.projects().items() if _project_gone(where)}
    freed += [Freed("store tag", tag, 0) for tag in sorted(gone)]
    if gone and not dry_run:
        store.untag(gone)
    blobs = store.gc(dry_run=dry_run, without=frozenset(gone))
    freed += [Freed("store blob", name, size) for name, size in blobs.items()]
    records = LayerRecords(root / "layers", store)
    dropped, live = records.prune(dry_run=dry_run,
                                  doomed=frozenset("sha256:" + name for name in blobs))
    freed += [Freed("layer record", name, size) for name, size in dropped.items()]
    freed += [Freed("build record", name, size)
              for name, size in inputs.prune(cache_dir, dry_run=dry_run).items()]
    rootfs = root / "rootfs"
    kept: tuple[tuple[Kind, Path], ...] = (("base tree", rootfs), ("bytecode cache", root / "pyc"))
    for what, where in kept:
        for tree in sorted(where.iterdir()) if where.is_dir() else ():
            if tree.name not in live and not tree.name.startswith("."):
                freed.append(Freed(what, tree.name, tree_size(tree)))
                if not dry_run:
                    shutil.rmtree(tree, ignore_errors=True)
    if not dry_run:
        for directory in (root, root / "blobs", rootfs):
            freed += [Freed("temporary", name, size) for name, size in sweep(directory).items()]
    if downloads:
        for path in sorted((root / "blobs").glob("*")):
            if path.is_file():
                freed.append(Freed("download", path.name, path.stat().st_size))
                if not dry_run:
                    path.unlink(missing_ok=True)
    if engine is not None:
        freed += _engine_images(engine, gone, dry_run)
        freed += _engine_jobs(engine, dry_run)
    return freed


def _engine_jobs(engine: Engine, dry_run: bool) -> list[Freed]:
    """A training job's stopped workers and its network, when ``dlenv train`` could not
    remove them (it was killed); a job with a worker still running is left alone."""
    label = f"{LABEL}.job"
    freed = []
    running = set()
    for worker in engine.containers(label):
        if worker.state == "running":
            running.add(worker.labels.get(label))
            continue
        if not dry_run:
            engine.remove(worker.name)
        freed.append(Freed("engine container", worker.name, 0))
    for network in engine.networks(label):
        if network in running:
            continue
        if dry_run or engine.remove_network(network):
            freed.append(Freed("engine network", network, 0))
    return freed


def _engine_images(engine: Engine, gone: set[str], dry_run: bool) -> list[Freed]:
    """Dangling images dlenv loaded, and the tags of projects that are gone."""
    freed = []
    for image in engine.images(f"{LABEL}.lock.digest"):
        stale = [t for t in image.tags if t in gone]
        if image.tags and len(stale) < len(image.tags):
            continue  # still named by a project (or by the user)
        if not dry_run:
            for ref in stale or [image.id]:
                engine.remove_image(ref)
        if dry_run or engine.image(image.id) is None:  # what went, whatever the engine said
            freed.append(Freed("engine image", ", ".join(image.tags) or image.id, image.size))
    return freed
