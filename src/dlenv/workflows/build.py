"""``build``, and the one way every other verb gets the project's image: ``ready_image``
locks when needed, builds when the store's image is missing or was made from another spec or
lock, and loads it into an engine that lacks it, replacing the project's previous image there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from dlenv.engine import Engine, EngineImage, detect_soon
from dlenv.errors import EngineError
from dlenv.fsutil import canonical_json
from dlenv.image import BuildPlan, plan_build
from dlenv.lock import Lock
from dlenv.oci import MT_CONFIG, MT_MANIFEST, Descriptor, LayerBlob
from dlenv.oci.export import export_oci, parse_output, save_docker_archive, write_docker_archive
from dlenv.oci.image import chain_ids, manifest_json
from dlenv.oci.store import PACK_ANNOTATION, OCIStore, default_store
from dlenv.spec import SPEC_FILES
from dlenv.workflows import inputs
from dlenv.workflows.inputs import BuildOptions
from dlenv.workflows.project import Project, fresh_lock, project_files, scan_files
from dlenv.workflows.report import Reporter, Silent

if TYPE_CHECKING:
    from dlenv.image.builder import BuildResult, NativeBuilder
    from dlenv.spec import Spec

@dataclass(frozen=True, slots=True)
class Built:
    result: BuildResult
    tag: str
    alias: str | None  # the readable name the engine also got (--load)
    loaded: Loaded | None  # None: not asked to load
    seconds: float


@dataclass(frozen=True, slots=True)
class Loaded:
    loaded: bool  # False: the engine held it already
    replaced: str | None  # the project's previous image, removed from the engine
    sent: int = 0  # layers sent to the engine
    held: int = 0  # layers the engine had already, left out of what was sent
    early: int = 0  # of those, the layers sent while the build was still running


IMAGE_LABEL = "dev.dlenv.spec.digest"  # on every image dlenv builds


def held_prefix(engine: Engine, diff_ids: Sequence[str]) -> int:
    """How many of the bottom layers (by diff id) the engine holds with every layer below
    them: those an archive may leave out (Docker's own store; 0 elsewhere)."""
    have = engine.held_layers(IMAGE_LABEL)
    chains = chain_ids(list(diff_ids))
    return next((i for i, c in enumerate(chains) if c not in have), len(chains))


def _shared(engine: Engine, current: EngineImage | None, diff_ids: Sequence[str]) -> int:
    """The bottom layers the image the tag names now shares with the new one (a rebuild:
    all but the changed layer and those above it), when the engine skips held layers: the
    answer of the question already asked, where ``held_prefix`` asks about every image."""
    if current is None or not engine.omits_held_layers():
        return 0
    pairs = zip(current.diff_ids, diff_ids, strict=False)
    return next((i for i, (a, b) in enumerate(pairs) if a != b),
                min(len(current.diff_ids), len(diff_ids)))


def load_image(engine: Engine, store: OCIStore, manifest: Descriptor,
               tags: Sequence[str], *, held_below: int = 0) -> Loaded:
    """Make ``engine`` hold the stored image under ``tags`` (streamed, no temporary
    archive), unless it does already, sending only the layers it lacks (``held_below``: how
    many bottom layers the caller saw the engine take, which spares asking it again). The
    image the first tag named before is removed when no other tag holds it (a container
    still using it keeps it), so rebuilds leave no dangling multi-GB images behind."""
    doc = store.read_json(manifest.digest)
    image_id = doc["config"]["digest"]
    current = engine.image(tags[0])  # one call: its id and every tag it has
    before = current.id if current else None
    if current is not None and current.id == image_id and set(tags) <= set(current.tags):
        return Loaded(False, None)
    diff_ids = store.read_json(image_id).get("rootfs", {}).get("diff_ids", [])
    held = 0 if len(diff_ids) != len(doc["layers"]) else \
        held_below or _shared(engine, current, diff_ids) or held_prefix(engine, diff_ids)
    try:
        engine.load(lambda f: write_docker_archive(store, manifest, f, *tags, held=held,
                                                   unpacked=True))
    except EngineError:
        if not held:
            raise
        held = 0  # the engine dropped a layer meanwhile: send them all
        engine.load(lambda f: write_docker_archive(store, manifest, f, *tags, unpacked=True))
    found = engine.image_id(tags[0])
    if found != image_id:
        raise EngineError(f"{engine.kind} holds {found} for {tags[0]} after loading, not "
                          f"{image_id}", fix=f"check '{engine.kind} images'")
    replaced = None
    if before and before != image_id:
        old = engine.image(before)
        if old is not None and not old.tags and engine.remove_image(before):
            replaced = before
    return Loaded(True, replaced, sent=len(diff_ids) - held, held=held)


class EarlyLoad:
    """Loads the image's lowest built layers into Docker while the rest are still building.

    Docker applies a layer at about the speed the build makes one, so a cold build that
    loads only at the end waits for both in turn. Here, whenever the run of built layers
    from the bottom grows by ``STEP`` bytes, that run goes to Docker as a small image of its
    own (tagged ``NAME:dlenv-loading``, labelled like the real one); the final load then
    finds their chains held and sends only the rest, and the helper tag is removed. Only
    Docker's own image store skips held layers; on another engine nothing is loaded early.
    Errors here only cost the head start: the final load sends whatever is missing."""

    STEP = 64 << 20

    def __init__(self, engine: Engine, store: OCIStore, plan: BuildPlan) -> None:
        self.engine, self.store, self.plan = engine, store, plan
        self.tag = f"{plan.name}:dlenv-loading"
        self.ready: dict[int, LayerBlob] = {}
        self.loaded = 0  # the bottom layers Docker holds (through the helper tag, or before)
        self.sent = 0  # the layers sent early
        self.helpers: list[str] = []  # ids of the helper images (each load retags)
        self.finished = False
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def layer(self, position: int, blob: LayerBlob) -> None:
        with self.cond:
            self.ready[position] = blob
            self.cond.notify()

    def _next(self) -> int:
        """How far to load now: the built run from the bottom, when it grew enough."""
        top = self.loaded
        while top in self.ready:
            top += 1
        grown = sum(self.ready[i].descriptor.size for i in range(self.loaded, top))
        return top if grown >= self.STEP else 0

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.finished and not self._next():
                    self.cond.wait()
                if self.finished:
                    return
                top = self._next()
                blobs = [self.ready[i] for i in range(top)]
            try:
                self.sent += self._load(blobs)
            except (EngineError, OSError):
                return  # the final load sends what is missing
            self.loaded = top

    def _load(self, blobs: list[LayerBlob]) -> int:
        """Load ``blobs`` as the helper image unless Docker holds them all; how many went."""
        held = held_prefix(self.engine, [b.diff_id for b in blobs])
        if held == len(blobs):
            return 0
        config = self.store.put_bytes(canonical_json({
            "architecture": "amd64", "os": "linux",
            "config": {"Labels": dict(self.plan.config.labels)},
            "rootfs": {"type": "layers", "diff_ids": [b.diff_id for b in blobs]}}), MT_CONFIG)
        manifest = self.store.put_bytes(
            manifest_json(config, [b.descriptor for b in blobs], {}), MT_MANIFEST)
        self.engine.load(lambda f: write_docker_archive(self.store, manifest, f, self.tag,
                                                        held=held, unpacked=True))
        self.helpers.append(config.digest)
        return len(blobs) - held

    def finish(self) -> None:
        """Wait for the load under way (if any); start no other."""
        with self.cond:
            self.finished = True
            self.cond.notify()
        self.thread.join()

    def clean(self) -> None:
        """Remove the helper images (their layers stay: the real image holds them)."""
        if self.helpers:
            self.engine.remove_image(self.tag)
        for image_id in self.helpers:
            self.engine.remove_image(image_id)


def native_builder(spec: Spec, cache_dir: str | None, report: Reporter) -> NativeBuilder:
    """The native builder, imported here: verbs that find their image current (run, verify,
    push) never load it."""
    from dlenv.image.builder import builder_for
    return builder_for(spec, cache_dir, report.progress)


def _build_loading(builder: NativeBuilder, plan: BuildPlan, engine: Engine | None,
                   *, pack: bool) -> tuple[BuildResult, EarlyLoad | None]:
    """Build, loading the finished bottom layers into ``engine`` meanwhile (Docker). Not
    ``pack``: the new layers stay plain tars until the image leaves the machine (see
    ``OCIStore.pack``)."""
    early = EarlyLoad(engine, builder.store, plan) \
        if engine is not None and engine.kind == "docker" else None
    try:
        return builder.build(plan, early.layer if early else None, pack=pack), early
    finally:
        if early:
            early.finish()


def _final_load(engine: Engine, store: OCIStore, manifest: Descriptor, tags: Sequence[str],
                early: EarlyLoad | None) -> Loaded:
    """The final load (sparing the question of what the early load saw Docker hold), its
    account with what went early; the helper tag removed."""
    loaded = load_image(engine, store, manifest, tags, held_below=early.loaded if early else 0)
    if early is None:
        return loaded
    early.clean()
    return replace(loaded, early=min(early.sent, loaded.held))


def _tags(plan: BuildPlan, tag: str | None = None) -> tuple[str, ...]:
    return (tag,) if tag else (plan.tag, plan.alias) if plan.alias != plan.tag else (plan.tag,)


def build(project: Project, options: BuildOptions, reporter: Reporter | None = None) -> Built:
    report = reporter or Silent()
    outputs = [parse_output(o) for o in options.outputs]  # bad values fail before any work
    docker = detect_soon("docker") if options.load else None
    before = inputs.start(project.file, project.lock_path, SPEC_FILES)
    lock = fresh_lock(project, cache_dir=options.cache_dir, frozen=options.frozen,
                      reporter=report)
    scanned, warnings = scan_files(project, report, profile=options.profile) \
        if options.with_project else (None, ())
    plan = plan_build(project.spec, lock, profile=options.profile,
                      compression=options.compression, bytecode=options.bytecode,
                      project=scanned.files if scanned else (),
                      location=str(project.directory.resolve()))
    started = time.monotonic()
    builder = native_builder(project.spec, options.cache_dir, report)
    engine = docker() if docker else None  # no engine: fail before building
    # An image only for Docker here is compressed when it leaves the machine, not now.
    result, early = _build_loading(builder, plan, engine, pack=engine is None or bool(outputs))
    tags = _tags(plan, options.tag)
    if options.tag:
        builder.store.tag(options.tag, result.manifest, project=plan.location,
                          pack=result.pending)
    shown = options.tag or plan.alias  # files leave this machine: the readable name
    for kind, where in outputs:
        report.step(f"writing {kind}:{where}")
        if kind == "oci":
            export_oci(builder.store, result.manifest, where, shown)
        else:
            save_docker_archive(builder.store, result.manifest, where, shown)
    loaded = None
    if engine is not None:
        report.step(f"loading {tags[0]} into Docker")
        loaded = _final_load(engine, builder.store, result.manifest, tags, early)
    alias = tags[1] if len(tags) > 1 else None
    if not project.variant:  # the next unchanged build answers from this record
        inputs.remember(before, options, project.config, tag=tags[0], alias=alias,
                        image_id=result.config.digest, digest=result.manifest.digest,
                        result=result.to_json(),
                        scanned=scanned.stats if scanned else None,
                        settled=scanned.settled if scanned else True, warnings=warnings)
    return Built(result=result, tag=tags[0], alias=alias, loaded=loaded,
                 seconds=time.monotonic() - started)


@dataclass(frozen=True, slots=True)
class Ready:
    """The project's image, current for its spec and lock, in the store (and the engine)."""

    lock: Lock
    tag: str
    manifest: Descriptor
    image_id: str  # the config digest: the engine's id of the image
    built: bool  # False: the store's image was current
    loaded: Loaded | None  # None: no engine was asked for


def _current(store: OCIStore, plan: BuildPlan) -> Descriptor | None:
    """The store's image for ``plan`` when it was built from the spec and lock as they are,
    by this dlenv's launcher or server (the plan's ``dev.dlenv.*`` labels carry the digests
    and those programs' hashes)."""
    manifest = store.resolve(plan.tag)
    if manifest is None or not store.has(manifest.digest):
        return None
    doc = store.read_json(manifest.digest)
    if not store.has(doc["config"]["digest"]):
        return None
    labels = store.read_json(doc["config"]["digest"]).get("config", {}).get("Labels") or {}
    wanted = plan.config.labels  # the digests, and the hashes of dlenv's shipped programs
    if any(labels.get(k) != v for k, v in wanted.items() if k.startswith("dev.dlenv.")):
        return None
    return manifest


def ready_image(project: Project, *, profile: str | None = None, for_run: bool = False,
                engine: Engine | Callable[[], Engine] | None = None, frozen: bool = False,
                cache_dir: str | None = None, reporter: Reporter | None = None,
                packed: bool = False) -> Ready:
    """The one way a verb gets the project's image: lock when the lock is missing or stale
    (unless ``frozen``), reuse what ``dlenv build`` made when it is current, else build it
    (``for_run``: without the project's files, which are mounted), and load it into
    ``engine`` when given (or what ``engine()`` gives, asked once the lock is read).
    ``packed``: the image leaves the machine or is measured as a registry would hold it
    (push, bundle, upgrade), so its layers are compressed; else an image built for
    ``engine`` keeps its new layers plain."""
    report = reporter or Silent()
    before = inputs.start(project.file, project.lock_path, SPEC_FILES)
    lock = fresh_lock(project, cache_dir=cache_dir, frozen=frozen, reporter=report)
    where = str(project.directory.resolve())
    plan = plan_build(project.spec, lock, profile=profile, for_run=for_run, location=where,
                      variant=project.variant)
    engine = engine() if callable(engine) else engine
    store = default_store(cache_dir)
    manifest = _current(store, plan)
    built, early = manifest is None, None
    if manifest is None:
        if not for_run:  # the project's files are walked only when they go into a build
            plan = plan_build(project.spec, lock, profile=profile, location=where,
                              variant=project.variant,
                              project=project_files(project, report, profile=profile))
        report.step(f"building {plan.tag}")
        builder = native_builder(project.spec, cache_dir, report)
        result, early = _build_loading(builder, plan, engine, pack=engine is None)
        manifest, store = result.manifest, builder.store
    tagged = store.resolve(plan.tag) if packed else None
    if tagged is not None and PACK_ANNOTATION in tagged.annotations:
        report.step(f"compressing {plan.tag}'s layers")  # the load still sends the tars
        manifest = store.packed_image(tagged)
    image_id = store.read_json(manifest.digest)["config"]["digest"]
    loaded = None
    if engine is not None:
        report.step(f"loading {plan.tag} into {engine.kind}")
        tags = _tags(plan)
        loaded = _final_load(engine, store, manifest, tags, early)
        if for_run and not project.variant:  # the next run answers from the record
            inputs.remember_run(before, project.config, profile=profile, cache_dir=cache_dir,
                                tag=tags[0], alias=tags[1] if len(tags) > 1 else None,
                                image_id=image_id, digest=manifest.digest,
                                cuda=bool(lock.target.cuda), view=project.spec.run_view())
    return Ready(lock=lock, tag=plan.tag, manifest=manifest, image_id=image_id, built=built,
                 loaded=loaded)
