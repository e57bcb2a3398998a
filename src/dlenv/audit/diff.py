"""``dlenv diff`` (pure): two environments side by side, the "works on my machine" explainer.

Each side is an ``Inventory``: what a lock pins, what an image holds (read from its layers'
file names and Debian's status database, so any image, not only dlenv's, can be compared) or
what this machine has. ``compare`` says what differs: Python, the base and its digest, Python
packages and .debs added, removed or changed, the CUDA libraries they bring (called out: a
cuDNN or NCCL change explains more failures than any other package), the environment, and
the layers the two share with the bytes that differ.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import canonicalize_name

from dlenv.lock import Lock

Pairs = tuple[tuple[str, str], ...]

# The CUDA libraries, as the nvidia-* wheels name them (nvidia-cudnn-cu12) and as Debian's or
# NVIDIA's .debs do (libcudnn8, libnccl2, cuda-cudart-12-4): the library, by its usual name.
_CUDA_WHEEL = re.compile(r"nvidia-([a-z0-9-]+?)-cu\d+")
_CUDA_DEB = re.compile(r"(?:lib)?(cudnn|nccl|cublas|cufft|curand|cusolver|cusparse|nvjitlink"
                       r"|cudart|cupti|nvrtc|tensorrt|nvinfer)(?:\d+)?(?:-(?:cuda-)?[\d-]+)?")
_CUDA_NAMES = {"cuda-runtime": "cudart", "cuda-nvrtc": "nvrtc", "cuda-cupti": "cupti",
               "cuda-nvcc": "nvcc", "nvjitlink": "nvjitlink"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Inventory:
    """One side of a diff."""

    label: str  # what the side is, as the user named it
    kind: str  # lock | project | image | host
    python: str | None = None  # "3.11" (a lock) or "3.11.2" (an image's or the host's)
    base: str | None = None  # "debian bookworm", an image reference, or the host's OS
    base_digest: str | None = None
    image_digest: str | None = None  # an image's manifest or engine id
    python_packages: Pairs = ()  # (canonical name, version), sorted
    debs: Pairs = ()  # (package, version), sorted
    env: Pairs = ()
    layers: tuple[tuple[str, int], ...] = ()  # (diff id, bytes), bottom first
    deb_sources: tuple[tuple[str, str, str], ...] = ()  # (package, source, its version)
    driver: str | None = None  # the NVIDIA driver (the host's)
    notes: tuple[str, ...] = ()  # what this side could not tell

    def cuda(self) -> dict[str, str]:
        return cuda_libraries(self.python_packages, self.debs)


def cuda_libraries(python_packages: Iterable[tuple[str, str]],
                   debs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The CUDA libraries (cudnn, nccl, cublas, cudart…) and their versions, from the
    nvidia-* wheels and the .debs that carry them."""
    found: dict[str, str] = {}
    for name, version in python_packages:
        if m := _CUDA_WHEEL.fullmatch(name):
            found[_CUDA_NAMES.get(m[1], m[1])] = version
    for name, version in debs:
        if (m := _CUDA_DEB.fullmatch(name)) and not name.endswith(("-dev", "-doc")):
            found.setdefault(m[1], version.split("+")[0])
    return dict(sorted(found.items()))


def lock_inventory(lock: Lock, label: str, *, profile: str | None = None,
                   env: Pairs = (), kind: str = "lock") -> Inventory:
    """What ``lock`` pins for ``profile``'s image (no layers: those exist once built)."""
    base = (f"debian {lock.base.suite}" if lock.base.kind == "debian"  # as os_name says
            else lock.base.ref or "an image")
    return Inventory(
        label=label, kind=kind, python=lock.target.python, base=base,
        base_digest=lock.base.digest,
        python_packages=tuple(sorted((str(canonicalize_name(w.name)), w.version)
                                     for w in lock.wheels_for(profile))),
        debs=tuple(sorted((d.name, d.version) for d in lock.debs_for(profile))),
        env=tuple(sorted(env)))


# --- reading an image's layers: only names and the dpkg database, never the files' bytes --

_DIST_INFO = re.compile(r"(?:.*/)?(?:site|dist)-packages/([^/]+)\.dist-info/METADATA")
_PYTHON = re.compile(r"(?:usr/(?:local/)?)?bin/python(3\.\d+)")
STATUS = "var/lib/dpkg/status"
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
STATUS_DIR = "var/lib/dpkg/status.d/"  # distroless images: one file per package


@dataclass(slots=True)
class LayerFacts:
    """What one layer adds and removes (whiteouts), from its members' names."""

    dists: dict[str, str] = field(default_factory=dict)  # dist-info dir -> (name, version)
    removed: set[str] = field(default_factory=set)  # paths a whiteout deletes
    status: str | None = None  # the dpkg status file, when this layer writes it
    status_parts: list[str] = field(default_factory=list)  # status.d's files
    pythons: set[str] = field(default_factory=set)
    os_release: str | None = None
    size: int = 0


def note_member(facts: LayerFacts, name: str) -> bool:
    """Record a layer member by its name; True when its content is wanted (dpkg's status)."""
    name = name.removeprefix("./")
    base, _, leaf = name.rpartition("/")
    if leaf.startswith(".wh."):
        facts.removed.add(f"{base}/{leaf[4:]}" if base else leaf[4:])
        return False
    if m := _DIST_INFO.fullmatch(name):
        stem = m[1]
        dist_name, _, version = stem.rpartition("-")
        if dist_name:
            facts.dists[name.rsplit("/", 1)[0]] = f"{canonicalize_name(dist_name)} {version}"
        return False
    if m := _PYTHON.fullmatch(name):
        facts.pythons.add(m[1])
        return False
    return name == STATUS or name.startswith(STATUS_DIR) or name in OS_RELEASE


def os_name(os_release: str | None) -> str | None:
    """``debian bookworm`` (ID and codename) from an os-release file, as a lock names its
    base; else its PRETTY_NAME."""
    if not os_release:
        return None
    fields = dict(line.split("=", 1) for line in os_release.splitlines() if "=" in line)
    fields = {k: v.strip().strip('"') for k, v in fields.items()}
    if fields.get("ID") and fields.get("VERSION_CODENAME"):
        return f"{fields['ID']} {fields['VERSION_CODENAME']}"
    return fields.get("PRETTY_NAME") or fields.get("ID")


def merge_layers(layers: Iterable[LayerFacts]) -> tuple[Pairs, str, str | None]:
    """The Python packages, dpkg's database (as ``dpkg_packages`` reads it) and the Python
    version of the file system the layers make, bottom first: a later layer's whiteout
    removes what an earlier one added."""
    dists: dict[str, str] = {}
    status = ""
    parts: list[str] = []
    pythons: set[str] = set()
    for layer in layers:
        for gone in layer.removed:
            dists = {d: v for d, v in dists.items() if d != gone and
                     not d.startswith(gone + "/")}
        dists.update(layer.dists)
        if layer.status is not None:
            status = layer.status
        parts += layer.status_parts
        pythons |= layer.pythons
    packages = sorted({(n, v) for n, _, v in (d.partition(" ") for d in dists.values())})
    python = max(pythons, key=lambda v: tuple(map(int, v.split("."))), default=None)
    return tuple(packages), "\n\n".join([status, *parts]), python


def dpkg_packages(text: str) -> Pairs:
    """The installed packages of a dpkg status database (``Status: install ok installed``)."""
    return tuple(sorted({(name, version) for name, version, _, _ in _installed(text)}))


def dpkg_sources(text: str) -> tuple[tuple[str, str, str], ...]:
    """(package, source package, source version) of each installed package: what Debian's
    advisories name (``Source: glibc``, or ``Source: gcc-12 (12.2.0-14)`` when the
    binary's version is not the source's)."""
    return tuple(sorted({(name, source, source_version)
                         for name, _, source, source_version in _installed(text)}))


def _installed(text: str) -> Iterator[tuple[str, str, str, str]]:
    from debian.deb822 import Deb822

    for para in Deb822.iter_paragraphs(text.splitlines()):
        if para.get("Package") and para.get("Version") and \
                para.get("Status", "install ok installed").endswith(" installed"):
            source, _, rest = para.get("Source", para["Package"]).partition(" ")
            version = rest.strip().strip("()") or para["Version"]
            yield para["Package"], para["Version"], source or para["Package"], version


# --- the comparison ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Changes:
    added: Pairs
    removed: Pairs
    changed: tuple[tuple[str, str, str], ...]  # (name, in A, in B)

    @property
    def count(self) -> int:
        return len(self.added) + len(self.removed) + len(self.changed)

    def to_json(self) -> dict[str, Any]:
        return {"added": dict(self.added), "removed": dict(self.removed),
                "changed": {n: {"a": a, "b": b} for n, a, b in self.changed}}


def changes(a: Mapping[str, str], b: Mapping[str, str]) -> Changes:
    return Changes(added=tuple(sorted((k, b[k]) for k in b.keys() - a.keys())),
                   removed=tuple(sorted((k, a[k]) for k in a.keys() - b.keys())),
                   changed=tuple(sorted((k, a[k], b[k]) for k in a.keys() & b.keys()
                                        if a[k] != b[k])))


@dataclass(frozen=True, slots=True)
class Diff:
    a: Inventory
    b: Inventory
    facts: tuple[tuple[str, str | None, str | None], ...]  # (what, A, B), the one-liners
    python_packages: Changes
    debs: Changes
    cuda: Changes
    env: Changes
    shared_layers: int
    bytes_only_a: int
    bytes_only_b: int

    @property
    def same(self) -> bool:
        return all(x == y for _, x, y in self.facts) and not any(
            c.count for c in (self.python_packages, self.debs, self.cuda, self.env))

    def to_json(self) -> dict[str, Any]:
        side = ("label", "kind", "python", "base", "base_digest", "image_digest", "driver",
                "notes")
        return {
            "same": self.same,
            "a": {k: getattr(self.a, k) for k in side},
            "b": {k: getattr(self.b, k) for k in side},
            "facts": [{"what": w, "a": x, "b": y, "differs": x != y}
                      for w, x, y in self.facts],
            "python_packages": self.python_packages.to_json(), "debs": self.debs.to_json(),
            "cuda": self.cuda.to_json(), "env": self.env.to_json(),
            "layers": {"a": len(self.a.layers), "b": len(self.b.layers),
                       "shared": self.shared_layers, "bytes_only_a": self.bytes_only_a,
                       "bytes_only_b": self.bytes_only_b},
        }


def _python_versions(a: str | None, b: str | None) -> tuple[str | None, str | None]:
    """Compared as far as both say: a lock pins 3.11, an image's file names say 3.11 too,
    while this machine's Python says 3.11.2."""
    if not a or not b:
        return a, b
    n = min(a.count("."), b.count(".")) + 1
    return ".".join(a.split(".")[:n]), ".".join(b.split(".")[:n])


def compare(a: Inventory, b: Inventory) -> Diff:
    """What differs between ``a`` and ``b``."""
    pa, pb = _python_versions(a.python, b.python)
    facts: list[tuple[str, str | None, str | None]] = [("python", pa, pb),
                                                       ("base", a.base, b.base)]
    if a.base_digest or b.base_digest:
        facts.append(("base digest", a.base_digest, b.base_digest))
    if a.driver or b.driver:
        facts.append(("NVIDIA driver", a.driver, b.driver))
    in_b = {d for d, _ in b.layers}
    in_a = {d for d, _ in a.layers}
    host_env = a.kind == "host" or b.kind == "host"  # a shell's environment is not an image's
    return Diff(
        a=a, b=b, facts=tuple(facts),
        python_packages=changes(dict(a.python_packages), dict(b.python_packages)),
        debs=changes(dict(a.debs), dict(b.debs)),
        cuda=changes(a.cuda(), b.cuda()),
        env=changes({}, {}) if host_env else changes(dict(a.env), dict(b.env)),
        shared_layers=len(in_a & in_b),
        bytes_only_a=sum(size for d, size in a.layers if d not in in_b),
        bytes_only_b=sum(size for d, size in b.layers if d not in in_a))
