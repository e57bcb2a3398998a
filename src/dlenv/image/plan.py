"""``plan_build`` decides an image's layers, config and labels from the lock alone (pure).

Large wheels get layers of their own, the rest a few stable buckets; the layer key says
what decides a layer's bytes, so an unchanged layer is reused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

from dlenv import launcher, serving
from dlenv.errors import BuildError
from dlenv.fsutil import location_id
from dlenv.image.project import ProjectFile
from dlenv.lock import ZIP_EPOCH, Lock, LockedDeb, LockedWheel, dumps
from dlenv.oci.image import (
    ImageConfig,
    rfc3339,
)
from dlenv.spec import ModelServing, Spec, User
from dlenv.spec.serve import MODEL_BASE_PATH as MODELS

# Bump when the bytes a layer plan produces change, so cached layers are not reused.
LAYER_FORMAT = 4
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# File times inside every layer. Layers do not take the lock's date, so that two specs that
# share a framework version share its layers' digests (the image config has the lock's date).
LAYER_EPOCH = ZIP_EPOCH
# A wheel this large gets a layer of its own: two environments that share it then share the
# layer's blob, and adding a package re-sends only the small bucket it lands in. At 1 MiB,
# TensorFlow's 47 wheels make 14 layers and leave 4 MB for the buckets (at 16 MiB: 3 layers
# and 58 MB of buckets, a third of which a sibling environment re-sent).
BIG_WHEEL = 1 << 20
BUCKETS = 4  # the other wheels are spread over this many layers, by a hash of their name
PROFILE_BUCKETS = 2  # the same, for wheels only a profile has
MAX_OWN_LAYERS = 48  # engines allow about 127 layers; stay well below
# A wheel this large is two layers: its large files (``LARGE_FILE`` and up: native
# libraries, no Python) and the rest. Docker applies a layer only once it is whole, and
# TensorFlow's 932 MB library takes a few seconds to build where the 15,000 other files
# (bytecode included) take the rest of its 17 s: split, Docker starts applying 1 GB of it
# while the rest is still built. A wheel that is almost all large files gets a small second
# layer (about 0.2 s more in Docker's load). The largest ``MAX_SPLIT`` are split, which keeps
# an image well within the engines' layer limit.
SPLIT_WHEEL = 64 << 20
LARGE_FILE = 16 << 20
MAX_SPLIT = 16


# dlenv's own programs that images carry, each a layer of its own: the multi-worker launcher
# (train profile) and the model server (serve profile of a TensorFlow spec).
Shipped = Literal["launcher", "server"]
SHIPPED: dict[Shipped, tuple[str, str]] = {"launcher": (launcher.__file__, launcher.PATH),
                                           "server": (serving.__file__, serving.PATH)}


@cache
def shipped_file(kind: Shipped) -> tuple[bytes, str]:
    """The bytes of one of dlenv's shipped programs and their sha256: read when an image
    that carries it is planned, not at every start."""
    data = Path(SHIPPED[kind][0]).read_bytes()
    return data, hashlib.sha256(data).hexdigest()


LayerKind = Literal["debian", "user-dirs", "wheels", "files", "links", "launcher", "server",
                    "model"]
# Which files of a split wheel a layer installs (see SPLIT_WHEEL): "" all of them.
WheelPart = Literal["", "large", "rest"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerPlan:
    name: str
    kind: LayerKind
    debs: tuple[LockedDeb, ...] = ()
    wheels: tuple[LockedWheel, ...] = ()
    files: tuple[ProjectFile, ...] = ()
    source: str | None = None  # the project directory, for kind "files" (not in the key)
    links: tuple[tuple[str, str], ...] = ()  # (image path, target), for kind "links"
    dest: str = ""  # the image directory a "model" layer's files go to (/models/NAME/N)
    part: WheelPart = ""  # for kind "wheels" of one wheel: which of its files

    @property
    def installs(self) -> bool:
        """Whether this layer is where its wheels are installed (their metadata and
        scripts): every wheel layer but a split wheel's large files."""
        return self.kind == "wheels" and self.part != "large"

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
            if self.part:  # unsplit layers keep the keys they had
                data.update(part=self.part, large_file=LARGE_FILE)
        elif self.kind == "files":
            data.update(files=[asdict(f) for f in self.files], user=asdict(plan.user),
                        workdir=plan.workdir)
        elif self.kind == "links":
            data.update(links=self.links)
        elif self.kind == "model":  # root's, read-only: the server never writes its model
            data.update(files=[asdict(f) for f in self.files], dest=self.dest)
        elif self.kind == "launcher" or self.kind == "server":
            data[self.kind] = shipped_file(self.kind)[1]
        else:
            data.update(user=asdict(plan.user), workdir=plan.workdir)
        # The key's form is frozen: it names files users keep (the ejected base tarball) and
        # every cached layer record, so it stays json.dumps' default spacing.
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildPlan:
    name: str
    tag: str  # unique to the project's location when the plan was given one
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
    alias: str = ""  # the readable NAME:PROFILE, also given to the image an engine loads
    location: str = ""  # the project's directory (recorded with the store's tag, for gc)


def lock_digest(lock: Lock) -> str:
    return "sha256:" + hashlib.sha256(dumps(lock).encode()).hexdigest()


def _bucket(name: str, n: int) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % n


def plan_wheel_layers(wheels: Sequence[LockedWheel]) -> list[LayerPlan]:
    """Large wheels one layer each (two from ``SPLIT_WHEEL`` up), largest lowest; the
    rest in a few buckets by a stable hash of the name, so adding or bumping one small
    package changes one small layer. Wheels every profile has come first, then the
    profile's own, so images of two profiles share the first."""
    layers: list[LayerPlan] = []
    common = [w for w in wheels if not w.profiles]
    own = [w for w in wheels if w.profiles]
    for group, prefix, buckets in ((common, "", BUCKETS), (own, "profile ", PROFILE_BUCKETS)):
        # Largest first: a layer's identity in an engine (its chain id) covers every layer
        # below it, so the framework sits lowest and a new or bumped package re-sends only
        # the smaller layers above it when the image is loaded.
        big = sorted((w for w in group if w.size >= BIG_WHEEL),
                     key=lambda w: (-w.size, w.name))[:MAX_OWN_LAYERS]
        small: dict[int, list[LockedWheel]] = {}
        for w in group:
            if w not in big:
                small.setdefault(_bucket(w.name, buckets), []).append(w)
        for n, w in enumerate(big):
            name = f"{w.name} {w.version}"
            if w.size >= SPLIT_WHEEL and n < MAX_SPLIT:
                layers += [LayerPlan(name=f"{name}, large files", kind="wheels", wheels=(w,),
                                     part="large"),
                           LayerPlan(name=name, kind="wheels", wheels=(w,), part="rest")]
            else:
                layers.append(LayerPlan(name=name, kind="wheels", wheels=(w,)))
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


def plan_model_layers(serving: ModelServing | None, project: Sequence[ProjectFile],
                      source: str) -> tuple[list[LayerPlan], tuple[ProjectFile, ...]]:
    """The served model's version directories, one layer each at ``/models/NAME/N`` (so a new
    version adds a layer and leaves the others, and the framework's, as they are), and the
    project's other files. Nothing is baked when the project's files do not hold the model
    (an ignore file leaves it out: it is mounted at run time)."""
    if serving is None or serving.path is None:
        return [], tuple(project)
    prefix = serving.path + "/"
    versions: dict[int, list[ProjectFile]] = {}
    rest: list[ProjectFile] = []
    for f in project:
        version, _, inner = f.path.removeprefix(prefix).partition("/")
        if f.path.startswith(prefix) and version.isdigit() and inner:
            versions.setdefault(int(version), []).append(replace(f, path=inner))
        else:
            rest.append(f)
    return [LayerPlan(name=f"model {serving.name} version {v}", kind="model",
                      files=tuple(sorted(versions[v])), dest=f"{MODELS}/{serving.name}/{v}",
                      source=f"{source}/{serving.path}/{v}")
            for v in sorted(versions)], tuple(rest)


def _interpreter_id(lock: Lock, python: str) -> str:
    if lock.base.kind == "debian":
        deb = next((d for d in lock.debs if d.name == f"python{python}-minimal"), None)
        return f"debian {deb.name} {deb.version}" if deb else f"python{python}"
    return f"image {lock.base.digest}"


RUN_SUFFIX = "-run"  # tags of images for `dlenv run`, where the project is mounted


def plan_build(spec: Spec, lock: Lock, *, profile: str | None = None,
               compression: str = "gzip", bytecode: bool = True,
               project: Sequence[ProjectFile] = (), for_run: bool = False,
               location: str = "", variant: str = "") -> BuildPlan:
    """The image of ``spec``'s ``profile``. ``for_run``: the image development containers
    start, without the project's files (they are mounted); it has a tag of its own, so that
    what ``dlenv build`` made (and ``dlenv push`` sends) is never replaced by it.
    ``location`` (the project's absolute directory) goes into the tag as a ``location_id``,
    so that two checkouts of one project never replace each other's images; the plain
    ``NAME:PROFILE`` stays as the alias. A ``variant`` (``dlenv upgrade``'s candidate) is
    added to both, so that its images never replace the project's own."""
    if for_run and project:
        raise ValueError("an image for `dlenv run` has the project mounted, not copied")
    if lock.base.kind == "image" and not lock.base.digest:
        raise BuildError(f"the lock has no digest for the base {lock.base.ref}",
                         fix="run 'dlenv lock' again")
    if profile is not None and spec.profile(profile) is None:
        have = ", ".join(p.name for p in spec.profiles) or "none"
        raise BuildError(f"{spec.source}: no profile {profile!r} (profiles: {have})",
                         fix="pick one of the spec's profiles")
    python = lock.target.python
    user = spec.user
    if lock.base.kind == "debian":
        layers = [LayerPlan(name=f"debian {lock.base.suite} base", kind="debian",
                            debs=lock.debs_for(profile))]
    else:
        # The registry image's layers are reused as they are; dlenv adds the user's dirs.
        layers = [LayerPlan(name="user home and workdir", kind="user-dirs")]
    layers += plan_wheel_layers(lock.wheels_for(profile))
    chosen = spec.profile(profile) if profile else None
    serving = chosen.serving if chosen else None
    if profile == "train":  # what `dlenv train` and the Indexed Jobs of `dlenv k8s` start
        layers.append(LayerPlan(name="dlenv launcher", kind="launcher"))
    if serving:
        layers.append(LayerPlan(name="dlenv model server", kind="server"))
    source = str(Path(spec.source).parent)
    models, project = plan_model_layers(serving, project, source)
    layers += models
    if project:
        layers.append(LayerPlan(name="project files", kind="files", files=tuple(project),
                                source=source))
    env = [("PATH", f"/home/{user.name}/.local/bin:{DEFAULT_PATH}"), ("LANG", "C.UTF-8"),
           ("PYTHONUNBUFFERED", "1"),
           ("HOME", f"/home/{user.name}"),
           ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")]
    if lock.target.cuda:
        env += [("NVIDIA_VISIBLE_DEVICES", "all"),
                ("NVIDIA_DRIVER_CAPABILITIES", "compute,utility")]
    if serving:
        env += list(serving.env())
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
    if lock.target.cuda:
        labels["dev.dlenv.cuda"] = lock.target.cuda
        labels["dev.dlenv.min-driver"] = lock.target.min_driver or ""
    for layer in layers:  # a newer dlenv's launcher or server makes the stored image stale
        if layer.kind == "launcher" or layer.kind == "server":
            labels[f"dev.dlenv.{layer.kind}"] = shipped_file(layer.kind)[1]
    config = ImageConfig(
        user=f"{user.uid}:{user.gid}", env=tuple(dict(env).items()), workdir=spec.workdir,
        cmd=chosen.command if chosen and chosen.command else
        ("python3", SHIPPED["server"][1]) if serving else ("python3",), labels=labels,
        exposed_ports=chosen.ports if chosen else (),
    )
    alias = (f"{spec.name}:{profile}" if profile else f"{spec.name}:latest") \
        + (f"-{variant}" if variant else "") + (RUN_SUFFIX if for_run else "")
    return BuildPlan(
        name=spec.name, tag=f"{alias}-{location_id(location)}" if location else alias,
        alias=alias, location=location, profile=profile, python=python,
        epoch=lock.source_date_epoch, compression=compression, workdir=spec.workdir,
        user=user, layers=tuple(layers), bytecode=bytecode,
        interpreter=_interpreter_id(lock, python),
        config=config, annotations=(("org.opencontainers.image.title", spec.name),),
        base_ref=(f"{lock.base.ref.split('@')[0]}@{lock.base.digest}"
                  if lock.base.kind == "image" and lock.base.ref else None),
        cuda_links=lock.target.cuda_source == "cu11-wheels",
    )
