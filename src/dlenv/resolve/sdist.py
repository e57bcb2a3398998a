"""Packages published only as source: pure-Python sdists built into wheels, reproducibly.

At lock time ``SdistBuilds.lock`` fetches the sdist by the hash the index gives, refuses one
that holds compiled code (it would need a compiler, and would be built for this host rather
than the image), pins its build requirements with hashes, and builds a wheel with
``uv build`` in an isolated environment holding exactly those, with SOURCE_DATE_EPOCH set to
the sdist's upload time. The lock records the sdist, the pins, the epoch and the built wheel's
hash. At build time ``SdistBuilds.wheel`` takes the wheel from the cache, or builds it again
from the same sdist and checks that it is the same wheel byte for byte.

Building runs the package's own build code, as ``pip install`` would: only for the packages
the spec asks for, in a fresh environment, never in the image.
"""

from __future__ import annotations

import os
import re
import tarfile
import tempfile
import tomllib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from dlenv.cache import ContentCache, sha256_file
from dlenv.errors import BuildError, IntegrityError, NoWheelError
from dlenv.fsutil import temp_prefix
from dlenv.lock import ZIP_EPOCH, LockedSdist, LockedWheel
from dlenv.resolve.python import IndexConfig, UvResolver

if TYPE_CHECKING:
    import httpx

LEGACY_REQUIRES = ("setuptools>=40.8.0", "wheel")  # PEP 517's default for a setup.py
PURE_TAGS = ("py3-none-any", "py2.py3-none-any")
_COMPILED = (".c", ".cc", ".cpp", ".cxx", ".pyx", ".rs", ".f", ".f90", ".cu", ".go", ".m")
_NATIVE_FILES = ("Cargo.toml", "CMakeLists.txt", "meson.build")
_NATIVE_BACKENDS = ("maturin", "scikit_build", "mesonpy", "setuptools_rust", "cmake", "pybind11")


@dataclass(frozen=True, slots=True)
class SdistFacts:
    requires: tuple[str, ...]  # build-system requirements
    native: str | None  # why it needs a compiler, when it does


def _read_sdist(path: Path, filename: str) -> tuple[list[PurePosixPath], dict[str, bytes]]:
    """Every member's path, and the bytes of the top-level pyproject.toml and setup.py
    (read from the archive; nothing is unpacked)."""
    wanted = ("pyproject.toml", "setup.py")
    found: dict[str, bytes] = {}
    if filename.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            names = [PurePosixPath(n) for n in archive.namelist()]
            for n in names:
                if len(n.parts) == 2 and n.name in wanted:
                    found[n.name] = archive.read(str(n))
        return names, found
    with tarfile.open(path) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        for m in members:
            name = PurePosixPath(m.name)
            handle = tar.extractfile(m) if len(name.parts) == 2 and name.name in wanted else None
            if handle is not None:
                found[name.name] = handle.read()
        return [PurePosixPath(m.name) for m in members], found


def inspect_sdist(path: Path, filename: str) -> SdistFacts:
    """What building ``path`` (the sdist ``filename``) needs, read from the archive without
    unpacking it."""
    try:
        names, files = _read_sdist(path, filename)
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        raise BuildError(f"{filename} is not a readable sdist: {exc}") from None
    for pure in names:
        if pure.suffix.lower() in _COMPILED or pure.name in _NATIVE_FILES:
            return SdistFacts((), f"it holds {pure.name} (code to compile)")
    requires: tuple[str, ...] = LEGACY_REQUIRES
    backend = "setuptools.build_meta:__legacy__"
    if "pyproject.toml" in files:
        try:
            system = tomllib.loads(files["pyproject.toml"].decode()).get("build-system", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            system = {}
        if isinstance(system.get("requires"), list):
            requires = tuple(str(r) for r in system["requires"])
            backend = str(system.get("build-backend", backend))
    if any(b in backend or any(b in r for r in requires) for b in _NATIVE_BACKENDS):
        return SdistFacts(requires, f"its build backend ({backend}) compiles code")
    if re.search(rb"\bExtension\s*\(|ext_modules\s*=", files.get("setup.py", b"")):
        return SdistFacts(requires, "its setup.py builds extension modules")
    if "setuptools" in backend and not any(re.match(r"wheel\b", r) for r in requires):
        requires = (*requires, "wheel")  # older setuptools asks for it while building
    return SdistFacts(requires, None)


class SdistBuilds:
    """Builds the wheels of source-only packages, at lock time and again at build time."""

    def __init__(self, resolver: UvResolver, cache: ContentCache, index: IndexConfig) -> None:
        self.resolver, self.cache, self.index = resolver, cache, index

    def lock(self, client: httpx.Client, name: str, version: str, sdist: Mapping[str, Any],
             tag: str) -> LockedWheel:
        """Build ``name`` ``version`` from its sdist (a pylock.toml entry) and pin it all."""
        url, sha = str(sdist["url"]), str(sdist["hashes"]["sha256"])
        uploaded = sdist.get("upload-time")
        epoch = int(uploaded.timestamp()) if uploaded is not None else ZIP_EPOCH
        path = self.cache.fetch(client, url, sha)
        facts = inspect_sdist(path, sdist_filename(url))
        fix = (f"pin a version of {name} that ships a wheel for {tag}, or add a package that "
               "provides it prebuilt")
        if facts.native:
            raise NoWheelError(f"{name} {version} is published only as source, and {facts.native}"
                               f": dlenv builds pure-Python sdists only", package=name, fix=fix)
        pins = self.resolver.pin_build_requires(facts.requires, self.index)
        locked = LockedSdist(url=url, sha256=sha, size=int(sdist.get("size") or
                                                          path.stat().st_size),
                             epoch=epoch, build_requires=pins)
        filename, wheel = self._build(path, locked)
        if not filename.endswith(tuple(f"-{t}.whl" for t in PURE_TAGS)):
            raise NoWheelError(f"{name} {version} built into {filename}, which is not pure "
                               "Python", package=name, fix=fix)
        return LockedWheel(name=name, version=version, filename=filename, url="",
                           sha256=wheel.name, size=wheel.stat().st_size, sdist=locked)

    def wheel(self, client: httpx.Client, locked: LockedWheel) -> Path:
        """The locked wheel of a source-only package: from the cache, or built again."""
        assert locked.sdist is not None
        found = self.cache.verified(locked.sha256)
        if found is not None:
            return found
        path = self.cache.fetch(client, locked.sdist.url, locked.sdist.sha256)
        filename, built = self._build(path, locked.sdist)
        if (filename, built.name) != (locked.filename, locked.sha256):
            raise IntegrityError(
                f"{locked.sdist.url} built into another wheel than the lock pins "
                f"({filename}, sha256 {built.name})",
                fix="the build is not reproducible here; run 'dlenv lock' on this machine, "
                    "or report it to the package's maintainers")
        return built

    def _build(self, sdist: Path, locked: LockedSdist) -> tuple[str, Path]:
        """Build in a temporary directory beside the cache, then keep the wheel in the cache
        under its own hash (fsynced and renamed: never half a file); its name and path."""
        with tempfile.TemporaryDirectory(dir=self.cache.root,
                                         prefix=temp_prefix("sdist")) as tmp:
            named = Path(tmp, "src", sdist_filename(locked.url))
            named.parent.mkdir()
            os.symlink(sdist, named)  # uv reads the format (and the project) from the name
            wheel = self.resolver.build_wheel(named, locked.build_requires, locked.epoch,
                                              self.index, Path(tmp, "out"))
            with wheel.open("rb") as f:
                os.fsync(f.fileno())
            target = self.cache.path(sha256_file(wheel))
            os.replace(wheel, target)
            return wheel.name, target


def sdist_filename(url: str) -> str:
    """The sdist's file name, from its URL."""
    name = unquote(urlsplit(url).path).rsplit("/", 1)[-1]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*\.(tar\.gz|zip)", name):
        raise BuildError(f"{url} does not name an sdist (.tar.gz or .zip)")
    return name
