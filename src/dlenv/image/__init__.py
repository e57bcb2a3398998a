"""Plan an image from a lock (pure), then build it natively into the OCI store.

``plan_build`` decides layers, config and labels from the lock alone. ``NativeBuilder``
executes a plan: it fetches what the layers need, writes each layer once (a layer whose
plan is unchanged is reused from the store without recompressing), and tags the image.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from dlenv.cache import ContentCache, default_cache_dir, http_client, sha256_file
from dlenv.errors import BuildError
from dlenv.fsutil import canonical_json, inside, sweep, temp_prefix, write_atomic
from dlenv.image.project import ProjectFile
from dlenv.image.wheels import (
    Interpreter,
    compile_tree,
    host_interpreter,
    install_wheels,
    interpreter_in,
    record_bytecode,
    site_packages,
)
from dlenv.lock import ZIP_EPOCH, Lock, LockedDeb, LockedWheel, dumps
from dlenv.oci import MT_MANIFEST, Descriptor, LayerBlob
from dlenv.oci.image import (
    ImageConfig,
    config_descriptor,
    config_json,
    manifest_json,
    rfc3339,
)
from dlenv.oci.layer import LayerOptions, write_layer
from dlenv.oci.store import OCIStore
from dlenv.resolve.sdist import SdistBuilds
from dlenv.spec import Spec, User

# Bump when the bytes a layer plan produces change, so cached layers are not reused.
LAYER_FORMAT = 4
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# File times inside every layer. Layers do not take the lock's date, so that two specs that
# share a framework version share its layers' digests (the image config has the lock's date).
LAYER_EPOCH = ZIP_EPOCH
BIG_WHEEL = 16 << 20  # a wheel this large gets a layer of its own
BUCKETS = 4  # the other wheels are spread over this many layers, by a hash of their name
PROFILE_BUCKETS = 2  # the same, for wheels only a profile has
MAX_OWN_LAYERS = 48  # engines allow about 127 layers; stay well below


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerPlan:
    name: str
    kind: str  # debian | user-dirs | wheels | files | links
    debs: tuple[LockedDeb, ...] = ()
    wheels: tuple[LockedWheel, ...] = ()
    files: tuple[ProjectFile, ...] = ()
    source: str | None = None  # the project directory, for kind "files" (not in the key)
    links: tuple[tuple[str, str], ...] = ()  # (image path, target), for kind "links"

    def key(self, plan: BuildPlan) -> str:
        """What determines this layer's bytes; equal keys give equal blobs."""
        data: dict[str, Any] = {"format": LAYER_FORMAT, "kind": self.kind,
                                "compression": plan.compression}
        if self.kind == "debian":
            data.update(debs=[(d.name, d.version, d.sha256) for d in self.debs],
                        user=asdict(plan.user), workdir=plan.workdir,
                        bytecode=plan.bytecode and plan.python)
        elif self.kind == "wheels":
            data.update(wheels=[(w.filename, w.sha256) for w in self.wheels],
                        python=plan.python, bytecode=plan.bytecode and plan.interpreter)
        elif self.kind == "files":
            data.update(files=[asdict(f) for f in self.files], user=asdict(plan.user),
                        workdir=plan.workdir)
        elif self.kind == "links":
            data.update(links=self.links)
        else:
            data.update(user=asdict(plan.user), workdir=plan.workdir)
        # The key's form is frozen: it names files users keep (the ejected base tarball) and
        # every cached layer record, so it stays json.dumps' default spacing.
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildPlan:
    name: str
    tag: str
    profile: str | None
    python: str
    epoch: int  # the lock's date: the image's "created"
    compression: str
    workdir: str
    user: User
    layers: tuple[LayerPlan, ...]
    config: ImageConfig
    bytecode: bool = True
    interpreter: str = ""  # which build of Python compiles the bytecode (part of layer keys)
    base_ref: str | None = None  # registry base, pinned: "ref@sha256:..."
    cuda_links: bool = False  # link CUDA wheels' libraries where the loader looks (cu11)
    annotations: tuple[tuple[str, str], ...] = field(default=())


def lock_digest(lock: Lock) -> str:
    return "sha256:" + hashlib.sha256(dumps(lock).encode()).hexdigest()


def _bucket(name: str, n: int) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % n


def plan_wheel_layers(wheels: Sequence[LockedWheel]) -> list[LayerPlan]:
    """Large wheels one layer each; the rest in a few buckets by a stable hash of the name,
    so adding or bumping one small package changes one small layer. Wheels every profile
    has come first, then the profile's own, so images of two profiles share the first."""
    layers: list[LayerPlan] = []
    common = [w for w in wheels if not w.profiles]
    own = [w for w in wheels if w.profiles]
    for group, prefix, buckets in ((common, "", BUCKETS), (own, "profile ", PROFILE_BUCKETS)):
        by_size = sorted((w for w in group if w.size >= BIG_WHEEL), key=lambda w: -w.size)
        big = sorted(by_size[:MAX_OWN_LAYERS], key=lambda w: w.name)
        small: dict[int, list[LockedWheel]] = {}
        for w in group:
            if w not in big:
                small.setdefault(_bucket(w.name, buckets), []).append(w)
        layers += [LayerPlan(name=f"{w.name} {w.version}", kind="wheels", wheels=(w,))
                   for w in big]
        layers += [LayerPlan(name=f"{prefix}python packages {i + 1}/{buckets}", kind="wheels",
                             wheels=tuple(sorted(small[i], key=lambda w: w.name)))
                   for i in sorted(small)]
    return layers


_NVIDIA_LIB = re.compile(r"/usr/local/lib/python3\.\d+/dist-packages/nvidia/[^/]+/lib/"
                         r"(lib[^/]+\.so[.\d]*)")
_NVCC = re.compile(r"(/usr/local/lib/python3\.\d+/dist-packages/nvidia/cuda_nvcc)/bin/ptxas")
SYSTEM_LIBS = "/usr/lib/x86_64-linux-gnu"


def plan_cuda_links(files: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Links that let the dynamic loader and XLA find CUDA from NVIDIA's wheels: each library
    of an ``nvidia/*/lib`` directory in the system library directory (searched by default,
    so no environment variable is needed), and ``/usr/local/cuda`` at nvcc's wheel (ptxas,
    libdevice), where TensorFlow looks for them."""
    links: dict[str, str] = {}
    for path in sorted(files):
        if found := _NVIDIA_LIB.fullmatch(path):
            links.setdefault(f"{SYSTEM_LIBS}/{found.group(1)}", path)
        elif found := _NVCC.fullmatch(path):
            links["/usr/local/cuda"] = found.group(1)
    return tuple(sorted(links.items()))


def _interpreter_id(lock: Lock, python: str) -> str:
    if lock.base.kind == "debian":
        deb = next((d for d in lock.debs if d.name == f"python{python}-minimal"), None)
        return f"debian {deb.name} {deb.version}" if deb else f"python{python}"
    return f"image {lock.base.digest}"


RUN_SUFFIX = "-run"  # tags of images for `dlenv run`, where the project is mounted


def plan_build(spec: Spec, lock: Lock, *, profile: str | None = None,
               compression: str = "gzip", bytecode: bool = True,
               project: Sequence[ProjectFile] = (), for_run: bool = False) -> BuildPlan:
    """The image of ``spec``'s ``profile``. ``for_run``: the image development containers
    start, without the project's files (they are mounted); it has a tag of its own, so that
    what ``dlenv build`` made (and ``dlenv push`` sends) is never replaced by it."""
    if for_run and project:
        raise ValueError("an image for `dlenv run` has the project mounted, not copied")
    if lock.base.kind == "image" and not lock.base.digest:
        raise BuildError(f"the lock has no digest for the base {lock.base.ref}",
                         fix="run 'dlenv lock' again")
    if profile is not None and spec.profile(profile) is None:
        have = ", ".join(p.name for p in spec.profiles) or "none"
        raise BuildError(f"{spec.source}: no profile {profile!r} (profiles: {have})",
                         fix="pick one of the spec's profiles")
    python = str(lock.target["python"])
    user = spec.user
    if lock.base.kind == "debian":
        layers = [LayerPlan(name=f"debian {lock.base.suite} base", kind="debian",
                            debs=lock.debs_for(profile))]
    else:
        # The registry image's layers are reused as they are; dlenv adds the user's dirs.
        layers = [LayerPlan(name="user home and workdir", kind="user-dirs")]
    layers += plan_wheel_layers(lock.wheels_for(profile))
    if project:
        layers.append(LayerPlan(name="project files", kind="files", files=tuple(project),
                                source=str(Path(spec.source).parent)))
    env = [("PATH", DEFAULT_PATH), ("LANG", "C.UTF-8"), ("PYTHONUNBUFFERED", "1"),
           ("HOME", f"/home/{user.name}"),
           ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")]
    if lock.target.get("cuda"):
        env += [("NVIDIA_VISIBLE_DEVICES", "all"),
                ("NVIDIA_DRIVER_CAPABILITIES", "compute,utility")]
    chosen = spec.profile(profile) if profile else None
    if chosen is not None:
        env += list(chosen.env)
    env += list(spec.env)
    labels = {
        "org.opencontainers.image.title": spec.name,
        "org.opencontainers.image.created": rfc3339(lock.source_date_epoch),
        "dev.dlenv.spec.digest": spec.digest(),
        "dev.dlenv.lock.digest": lock_digest(lock),
        "dev.dlenv.profile": profile or "",
        "dev.dlenv.python": python,
    }
    if lock.target.get("cuda"):
        labels["dev.dlenv.cuda"] = str(lock.target["cuda"])
        labels["dev.dlenv.min-driver"] = str(lock.target.get("min_driver", ""))
    config = ImageConfig(
        user=f"{user.uid}:{user.gid}", env=tuple(dict(env).items()), workdir=spec.workdir,
        cmd=chosen.command if chosen and chosen.command else ("python3",), labels=labels,
        exposed_ports=chosen.ports if chosen else (),
    )
    tag = (f"{spec.name}:{profile}" if profile else f"{spec.name}:latest") \
        + (RUN_SUFFIX if for_run else "")
    return BuildPlan(
        name=spec.name, tag=tag, profile=profile, python=python,
        epoch=lock.source_date_epoch, compression=compression, workdir=spec.workdir,
        user=user, layers=tuple(layers), bytecode=bytecode,
        interpreter=_interpreter_id(lock, python),
        config=config, annotations=(("org.opencontainers.image.title", spec.name),),
        base_ref=(f"{lock.base.ref.split('@')[0]}@{lock.base.digest}"
                  if lock.base.kind == "image" and lock.base.ref else None),
        cuda_links=lock.target.get("cuda_source") == "cu11-wheels",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildResult:
    tag: str
    manifest: Descriptor
    config: Descriptor
    layers: tuple[LayerBlob, ...]
    reused: tuple[bool, ...]
    # Image paths that more than one layer ships (the upper layer's file is the one seen).
    overlaps: tuple[tuple[str, str, str], ...] = ()  # (path, lower layer, upper layer)
    notes: tuple[str, ...] = ()  # what the user should know (e.g. bytecode not compiled)

    @property
    def size(self) -> int:
        return self.manifest.size + self.config.size + sum(x.descriptor.size for x in self.layers)

    def to_json(self) -> dict[str, object]:
        return {
            "tag": self.tag, "digest": self.manifest.digest, "size": self.size,
            "layers": [{"digest": x.descriptor.digest, "size": x.descriptor.size,
                        "media_type": x.descriptor.media_type, "diff_id": x.diff_id,
                        "name": x.name, "reused": r}
                       for x, r in zip(self.layers, self.reused, strict=True)],
            "overlaps": [{"path": p, "lower": a, "upper": b} for p, a, b in self.overlaps],
            "notes": list(self.notes),
        }


Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(slots=True)
class _Built:
    blob: LayerBlob
    files: tuple[str, ...] = ()  # regular files a wheel layer ships (to report overlaps)
    notes: tuple[str, ...] = ()


class NativeBuilder:
    """Executes build plans without a container engine."""

    def __init__(self, store: OCIStore, cache_dir: Path, *, mirror: str | None = None,
                 ca_bundle: str | None = None, progress: Progress | None = None,
                 sdists: SdistBuilds | None = None) -> None:
        self.store = store
        self.cache = ContentCache(cache_dir / "blobs")
        self.layer_index = cache_dir / "layers"
        self.layer_index.mkdir(parents=True, exist_ok=True)
        for directory in (cache_dir, self.cache.dir, store.blobs):
            sweep(directory)  # what killed builds left: layer trees, partial downloads
        self.rootfs_dir = cache_dir / "rootfs"
        self.mirror = mirror
        self.ca_bundle = ca_bundle
        self.progress = progress or (lambda stage, done, total: None)
        self.sdists = sdists  # rebuilds the wheels of source-only packages
        self._interpreters: dict[str, Interpreter | None] = {}  # by BuildPlan.interpreter
        self._interpreter_lock = threading.Lock()
        self._base_future: Future[_Built] | None = None

    # --- the layer records: which blob a layer key gave --------------------------------
    def _cached_layer(self, key: str) -> _Built | None:
        """The blob a layer key gave before, when its record reads and the store still holds
        that blob intact (size and stamp; see ``OCIStore.check``); else None, and a bad
        record is dropped so the layer is built again."""
        path = self.layer_index / f"{key}.json"
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_bytes())
            blob = LayerBlob(descriptor=Descriptor.from_json(data["descriptor"]),
                             diff_id=str(data["diff_id"]), name=str(data["name"]))
            built = _Built(blob, tuple(map(str, data.get("files", ()))),
                           tuple(map(str, data.get("notes", ()))))
        except (ValueError, KeyError, TypeError, AttributeError):
            path.unlink(missing_ok=True)
            return None
        desc = blob.descriptor
        if not self.store.check(desc.digest, desc.size, blob.diff_id):
            path.unlink(missing_ok=True)
            return None
        return built

    def _remember(self, key: str, built: _Built) -> None:
        write_atomic(self.layer_index / f"{key}.json", canonical_json({
            "descriptor": built.blob.descriptor.to_json(), "diff_id": built.blob.diff_id,
            "name": built.blob.name, "files": list(built.files),
            "notes": list(built.notes)}))

    def _base_image(self, plan: BuildPlan) -> tuple[list[LayerBlob], dict[str, Any]]:
        """Pull a registry base by digest (a no-op when the store has it)."""
        from dlenv.oci.registry import Reference, RegistryClient

        assert plan.base_ref is not None
        ref = Reference.parse(plan.base_ref)
        manifest = self.store.resolve(plan.base_ref)
        if manifest is None or not self.store.has(manifest.digest):
            client = RegistryClient()
            try:
                self.progress(f"pulling {plan.base_ref}", 0, 1)
                manifest = client.pull(ref, self.store, tag=plan.base_ref)
            finally:
                client.close()
        doc = self.store.read_json(manifest.digest)
        config = self.store.read_json(doc["config"]["digest"])
        diff_ids = config["rootfs"]["diff_ids"]
        layers = [LayerBlob(descriptor=Descriptor.from_json(x), diff_id=d, name="base")
                  for x, d in zip(doc["layers"], diff_ids, strict=True)]
        return layers, config

    def build(self, plan: BuildPlan) -> BuildResult:
        blobs: list[LayerBlob] = []
        reused: list[bool] = []
        notes: list[str] = []
        owner: dict[str, str] = {}  # image path -> the wheel layer that ships it
        overlaps: list[tuple[str, str, str]] = []
        base_config: dict[str, Any] | None = None
        if plan.base_ref:
            base_layers, base_config = self._base_image(plan)
            blobs += base_layers
            reused += [True] * len(base_layers)
        keys = [layer.key(plan) for layer in plan.layers]
        cached = [self._cached_layer(k) for k in keys]
        built_now = self._build_missing(plan, [
            (i, layer) for i, (layer, c) in enumerate(zip(plan.layers, cached, strict=True))
            if c is None])
        for i, (layer, key) in enumerate(zip(plan.layers, keys, strict=True)):
            built = cached[i]
            if built is None:
                built = built_now[i]
                self._remember(key, built)
            reused.append(cached[i] is not None)
            blobs.append(built.blob)
            notes += [n for n in built.notes if n not in notes]
            for path in built.files:
                if path in owner:
                    overlaps.append((path, owner[path], layer.name))
                owner[path] = layer.name
        if plan.cuda_links:
            links = LayerPlan(name="CUDA library links", kind="links",
                              links=plan_cuda_links(owner))
            key = links.key(plan)
            built = self._cached_layer(key)
            reused.append(built is not None)
            if built is None:
                built = self._build_layer(plan, links, {})
                self._remember(key, built)
            blobs.append(built.blob)
        own = blobs[len(blobs) - len(plan.layers) - plan.cuda_links:]
        cfg_bytes = config_json(plan.config, own, plan.epoch, base=base_config)
        cfg = self.store.put_bytes(cfg_bytes, config_descriptor(cfg_bytes).media_type)
        manifest_bytes = manifest_json(cfg, [b.descriptor for b in blobs], dict(plan.annotations))
        manifest = self.store.put_bytes(manifest_bytes, MT_MANIFEST)
        self.store.tag(plan.tag, manifest)
        return BuildResult(tag=plan.tag, manifest=manifest, config=cfg, layers=tuple(blobs),
                           reused=tuple(reused), overlaps=tuple(overlaps), notes=tuple(notes))

    def _build_missing(self, plan: BuildPlan,
                       todo: Sequence[tuple[int, LayerPlan]]) -> dict[int, _Built]:
        """Build layers concurrently while their wheels download: the base first (its
        interpreter compiles the others' bytecode), then the largest layers, so the longest
        chain of work starts at once. Each layer streams to the store; none is held in memory.
        """
        if not todo:
            return {}
        wheels = {w.sha256: w for _, layer in todo for w in layer.wheels}
        advance = self._counter("downloading wheels", sum(w.size for w in wheels.values()))

        def size(item: tuple[int, LayerPlan]) -> int:
            layer = item[1]
            return -1 << 62 if layer.kind == "debian" else -sum(w.size for w in layer.wheels)

        workers = max(2, min(4, (os.cpu_count() or 1) + 1))
        with http_client(self.ca_bundle) as client, \
                ThreadPoolExecutor(max_workers=8) as downloads, \
                ThreadPoolExecutor(max_workers=workers) as builders:
            fetches = {sha: downloads.submit(self.wheel_file, client, w, advance)
                       for sha, w in sorted(wheels.items(), key=lambda x: -x[1].size)}
            futures = {}
            for i, layer in sorted(todo, key=size):
                future = builders.submit(self._build_layer, plan, layer, fetches)
                if layer.kind == "debian":
                    self._base_future = future
                futures[i] = future
            try:
                return {i: f.result() for i, f in futures.items()}
            except BaseException:
                pending: list[Future[Any]] = [*futures.values(), *fetches.values()]
                for f in pending:
                    f.cancel()
                raise
            finally:
                self._base_future = None

    def wheel_file(self, client: httpx.Client, wheel: LockedWheel,
                   advance: Callable[[int], None] | None = None) -> Path:
        """The locked wheel, verified: downloaded, or (source-only packages) built again."""
        if wheel.sdist is None:
            return self.cache.fetch(client, wheel.url, wheel.sha256, advance)
        if self.sdists is None:
            raise BuildError(f"{wheel.name} {wheel.version} is built from its sdist, and this "
                             "build has no way to build it")
        self.progress(f"building {wheel.name} {wheel.version} from source", 0, 1)
        path = self.sdists.wheel(client, wheel)
        if advance:
            advance(wheel.size)
        return path

    def _build_layer(self, plan: BuildPlan, layer: LayerPlan,
                     wheel_paths: Mapping[str, Future[Path]]) -> _Built:
        with tempfile.TemporaryDirectory(prefix=temp_prefix("layer"),
                                         dir=self.cache.root.parent) as t:
            root = Path(t, "root")
            root.mkdir()
            owners: dict[str, tuple[int, int]] = {}
            modes: dict[str, int] = {}
            files: tuple[str, ...] = ()
            notes: tuple[str, ...] = ()
            ids = (plan.user.uid, plan.user.gid)
            if layer.kind == "debian":
                notes = self._debian(plan, layer, root)
                owners = {f"home/{plan.user.name}": ids, plan.workdir.lstrip("/"): ids}
                modes = {"tmp": 0o1777, "var/tmp": 0o1777, "root": 0o700, "etc/shadow": 0o640}
            elif layer.kind == "user-dirs":
                for d in (f"home/{plan.user.name}", plan.workdir.lstrip("/")):
                    inside(root, d).mkdir(parents=True, exist_ok=True)
                    owners[d] = ids
            elif layer.kind == "wheels":
                notes = self._wheels(plan, layer, root, wheel_paths)
                files = tuple(sorted(
                    "/" + str(p.relative_to(root)) for p in root.rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts))
            elif layer.kind == "files":
                owners = self._project(plan, layer, root)
            elif layer.kind == "links":
                for path, target in layer.links:
                    dest = inside(root, path)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(target, dest)
            else:
                raise BuildError(f"unknown layer kind {layer.kind}")
            options = LayerOptions(epoch=LAYER_EPOCH, compression=plan.compression,
                                   owners=owners, modes=modes)
            self.progress(f"writing layer: {layer.name}", 0, 1)
            with self.store.writer() as f:
                blob = write_layer(root, f, options, name=layer.name)
                self.store.commit(f, blob.descriptor.digest, blob.diff_id)
            self.progress(f"writing layer: {layer.name}", 1, 1)
            if layer.kind == "debian":
                self._keep_rootfs(layer.key(plan), root)
            return _Built(blob, files, notes)

    def _debian(self, plan: BuildPlan, layer: LayerPlan, root: Path) -> tuple[str, ...]:
        from dlenv.image.debian import materialize_base

        paths = self._fetch_debs(layer.debs)
        self.progress("unpacking .debs", 0, 1)
        materialize_base(paths, layer.debs, root, plan.user, plan.workdir)
        self.progress("unpacking .debs", 1, 1)
        if not plan.bytecode:
            return ()
        interpreter = interpreter_in(root, plan.python)
        if interpreter is None:
            return (_no_bytecode(plan.python, "the standard library's"),)
        self.progress("compiling the standard library", 0, 1)
        compile_tree(interpreter, root, [f"/usr/lib/python{plan.python}",
                                         "/usr/lib/python3/dist-packages"])
        self.progress("compiling the standard library", 1, 1)
        return ()

    def _fetch_debs(self, debs: Sequence[LockedDeb]) -> dict[str, Path]:
        from dlenv.image.debian import fetch_debs
        from dlenv.resolve.debian import find_mirror

        mirror = self.mirror or find_mirror(os.environ)
        advance = self._counter("downloading .debs", sum(d.size for d in debs))
        with http_client(self.ca_bundle) as client:
            return fetch_debs(debs, self.cache, client, mirror, advance)

    def _counter(self, stage: str, total: int) -> Callable[[int], None]:
        """A progress callback for bytes arriving from several download threads at once."""
        done = 0
        lock = threading.Lock()

        def advance(n: int) -> None:
            nonlocal done
            with lock:
                done += n
                self.progress(stage, done, total)

        return advance

    def _keep_rootfs(self, key: str, root: Path) -> None:
        """Keep an unpacked base: its interpreter compiles the wheels' bytecode."""
        self.rootfs_dir.mkdir(parents=True, exist_ok=True)
        target = self.rootfs_dir / key
        if target.exists():
            return
        with contextlib.suppress(OSError):  # another build kept the same tree first
            os.replace(root, target)

    def _bytecode_interpreter(self, plan: BuildPlan) -> Interpreter | None:
        """The image's Python, runnable here: the kept base tree, else a matching host one."""
        base_future = self._base_future
        if base_future is not None:
            base_future.result()  # the base layer being built keeps its tree for us
        with self._interpreter_lock:
            return self._find_interpreter(plan)

    def _find_interpreter(self, plan: BuildPlan) -> Interpreter | None:
        if plan.interpreter in self._interpreters:
            return self._interpreters[plan.interpreter]
        base = next((x for x in plan.layers if x.kind == "debian"), None)
        found = None
        if base is not None:
            key = base.key(plan)
            rootfs = self.rootfs_dir / key
            if not rootfs.exists():  # the base layer came from the cache without its tree
                with tempfile.TemporaryDirectory(prefix=temp_prefix("rootfs"),
                                                 dir=self.cache.root.parent) as t:
                    tree = Path(t, "root")
                    tree.mkdir()
                    self._debian(plan, base, tree)
                    self._keep_rootfs(key, tree)
            found = interpreter_in(rootfs, plan.python)
        found = found or host_interpreter(plan.python)
        self._interpreters[plan.interpreter] = found
        return found

    def _wheels(self, plan: BuildPlan, layer: LayerPlan, root: Path,
                wheel_paths: Mapping[str, Future[Path]]) -> tuple[str, ...]:
        paths = [(w, wheel_paths[w.sha256].result()) for w in layer.wheels]
        self.progress(f"installing {layer.name}", 0, 1)
        install_wheels(paths, root, plan.python)
        self.progress(f"installing {layer.name}", 1, 1)
        if not plan.bytecode:
            return ()
        interpreter = self._bytecode_interpreter(plan)
        if interpreter is None:
            return (_no_bytecode(plan.python, "the Python packages'"),)
        self.progress(f"compiling {layer.name}", 0, 1)
        compile_tree(interpreter, root, [site_packages(plan.python)])
        record_bytecode(root, plan.python)
        self.progress(f"compiling {layer.name}", 1, 1)
        return ()

    def _project(self, plan: BuildPlan, layer: LayerPlan,
                 root: Path) -> dict[str, tuple[int, int]]:
        """Copy the project's files into the workdir, owned by the image's user."""
        assert layer.source is not None
        source = Path(layer.source)
        workdir = plan.workdir.lstrip("/")
        ids = (plan.user.uid, plan.user.gid)
        owners = {workdir: ids}
        inside(root, workdir).mkdir(parents=True)
        for f in layer.files:
            dest = inside(root, f"{workdir}/{f.path}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            rel = f"{workdir}/{f.path}"
            parts = rel.split("/")
            for i in range(len(parts) - 1, 1, -1):
                owners["/".join(parts[:i])] = ids
            owners[rel] = ids
            if f.link is not None:
                os.symlink(f.link, dest)
                continue
            shutil.copyfile(source / f.path, dest)
            if sha256_file(dest) != f.sha256:
                raise BuildError(f"{source / f.path} changed while the image was built",
                                 fix="build again when the file is no longer being written")
            os.chmod(dest, 0o755 if f.executable else 0o644)
        return owners


def _no_bytecode(python: str, what: str) -> str:
    return (f"{what} bytecode was not compiled: no python{python} of the image runs on this "
            "build host; each container compiles what it imports, at every start")


def default_store(cache_dir: Path) -> OCIStore:
    return OCIStore(cache_dir / "store")


def builder_for(spec: Spec, cache_dir: str | None,
                progress: Progress | None = None) -> tuple[NativeBuilder, Path]:
    from dlenv.resolve.python import UvResolver, index_config

    root = default_cache_dir(cache_dir)
    store = default_store(root)
    index = index_config(spec.index, None, os.environ)
    sdists = SdistBuilds(UvResolver(cache_dir=root / "uv"), ContentCache(root / "blobs"), index)
    return NativeBuilder(store, root, ca_bundle=index.ca_bundle, progress=progress,
                         sdists=sdists), root
