"""Debian packages for a native base: the signed suite index, the dependency closure, and
the .debs a lock pins (``lock_debs``).

The suite's InRelease is verified with gpgv against the Debian archive keyring, the Packages
index by the Release's sha256, and every .deb later by the index's sha256.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dlenv.cache import ContentCache, default_cache_dir, http_client
from dlenv.errors import FetchError, IntegrityError, LockError
from dlenv.lock import Lock, LockedBase, LockedDeb
from dlenv.spec import Spec

if TYPE_CHECKING:
    import httpx

ARCH = "amd64"
KEYRING_GLOB = "debian-archive-*.gpg"
KEYRING_DIR = Path("/usr/share/keyrings")
SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))

# What a Python runtime image needs from the suite; the spec's apt packages come on top.
# libstdc++6 and libgcc-s1 are libraries the manylinux policy lets every wheel assume.
RUNTIME_PACKAGES = ("base-files", "bash", "coreutils", "dash", "libc-bin", "python3",
                    "python-is-python3", "libstdc++6", "libgcc-s1",
                    "ca-certificates", "tzdata")
_FIELDS = ("Package", "Version", "Architecture", "Depends", "Pre-Depends", "Provides",
           "Filename", "Size", "SHA256", "Priority", "Section", "Installed-Size",
           "Maintainer", "Multi-Arch", "Source", "Description", "Essential", "Homepage",
           "Breaks", "Replaces", "Conflicts", "Recommends", "Suggests")


@dataclass(frozen=True, slots=True)
class Stanza:
    """One package of a Packages index, with the fields dlenv uses."""

    fields: tuple[tuple[str, str], ...]

    def get(self, key: str, default: str = "") -> str:
        return next((v for k, v in self.fields if k == key), default)

    @property
    def name(self) -> str:
        return self.get("Package")


def _apt_source(sources: Sequence[Path], security: bool) -> str | None:
    """The first URI of the host's apt sources whose suite is (or is not) a -security one,
    deb822 (``URIs:`` and ``Suites:`` in one stanza) or one-line style."""
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text()
        for stanza in text.split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and ("-security" in suites.group(1)) == security:
                return uris.group(1).rstrip("/")
        for line in text.splitlines():
            m = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and m.group(2).endswith("-security") == security:
                return m.group(1).rstrip("/")
    return None


def find_mirror(environ: Mapping[str, str], sources: Sequence[Path] = SOURCES) -> str:
    """The Debian mirror: DLENV_DEBIAN_MIRROR, else the host's apt sources."""
    if environ.get("DLENV_DEBIAN_MIRROR"):
        return environ["DLENV_DEBIAN_MIRROR"].rstrip("/")
    found = _apt_source(sources, security=False)
    if found is None:
        raise LockError("no Debian mirror is configured",
                        fix="set DLENV_DEBIAN_MIRROR to a Debian mirror URL")
    return found


def find_security_mirror(environ: Mapping[str, str], sources: Sequence[Path] = SOURCES) -> str:
    """The mirror of Debian's security archive: DLENV_DEBIAN_SECURITY_MIRROR; else beside a
    mirror named by DLENV_DEBIAN_MIRROR (``…/debian`` → ``…/debian-security``, Debian's
    layout); else the host's apt sources; else beside the main mirror."""
    if environ.get("DLENV_DEBIAN_SECURITY_MIRROR"):
        return environ["DLENV_DEBIAN_SECURITY_MIRROR"].rstrip("/")
    if not environ.get("DLENV_DEBIAN_MIRROR"):
        found = _apt_source(sources, security=True)
        if found:
            return found
    return find_mirror(environ, sources) + "-security"


def keyrings(directory: Path = KEYRING_DIR) -> list[Path]:
    override = os.environ.get("DLENV_DEBIAN_KEYRING")
    if override:
        return [Path(override)]
    found = sorted(p for p in directory.glob(KEYRING_GLOB) if "removed" not in p.name)
    if not found:
        raise LockError("the Debian archive keyring is not installed",
                        fix="apt-get install debian-archive-keyring, or set DLENV_DEBIAN_KEYRING")
    return found


def verify_inrelease(data: bytes, rings: Iterable[Path]) -> bytes:
    """The signed text of an InRelease file, if a Debian archive key signed it."""
    with tempfile.TemporaryDirectory(prefix="dlenv-gpgv-") as tmp:
        signed = Path(tmp, "InRelease")
        signed.write_bytes(data)
        out = Path(tmp, "Release")
        cmd = ["gpgv", "--quiet", "--output", str(out)]
        for ring in rings:
            cmd += ["--keyring", str(ring)]
        proc = subprocess.run([*cmd, str(signed)], capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not out.exists():
            raise IntegrityError(
                f"the suite's InRelease signature does not verify: {proc.stderr.strip()}",
                fix="the mirror served a tampered or stale file; use another mirror, or update "
                    "debian-archive-keyring")
        return out.read_bytes()


def parse_packages(text: str) -> dict[str, Stanza]:
    """Index a Packages file by package name.

    Hand-written because python-debian's Deb822 takes tens of seconds on a 60,000-stanza
    index; this reads only the fields dlenv needs, with continuation lines.
    """
    wanted = set(_FIELDS)
    out: dict[str, Stanza] = {}
    for block in text.split("\n\n"):
        fields: list[tuple[str, str]] = []
        for line in block.split("\n"):
            if not line:
                continue
            if line[0] in " \t":
                if fields and fields[-1][0] in wanted:
                    key, value = fields[-1]
                    fields[-1] = (key, value + "\n" + line)
                continue
            key, _, value = line.partition(":")
            fields.append((key, value.strip()))
        stanza = Stanza(tuple((k, v) for k, v in fields if k in wanted))
        if stanza.name:
            out.setdefault(stanza.name, stanza)
    return out


@dataclass(frozen=True, slots=True)
class SuiteIndex:
    suite: str
    release_sha256: str
    packages: dict[str, Stanza]
    origin: dict[str, str] = field(default_factory=dict)  # name -> SUITE-updates/-security

    def providers(self) -> dict[str, list[str]]:
        table: dict[str, list[str]] = {}
        for name, stanza in self.packages.items():
            for entry in _split_list(stanza.get("Provides")):
                table.setdefault(_bare(entry), []).append(name)
        return {k: sorted(v) for k, v in table.items()}


def _split_list(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


def _bare(entry: str) -> str:
    """'libfoo1:any (>= 2)' -> 'libfoo1'."""
    return re.split(r"[\s(:\[]", entry.strip(), maxsplit=1)[0]


def fetch_suite(client: httpx.Client, mirror: str, suite: str, cache: ContentCache,
                rings: Sequence[Path] | None = None) -> SuiteIndex:
    import httpx
    from debian.deb822 import Release  # heavy imports, only where a suite is read

    url = f"{mirror}/dists/{suite}/InRelease"
    try:
        r = client.get(url)
        r.raise_for_status()
    except httpx.HTTPError as exc:
        raise FetchError(f"cannot read {url}: {exc}", fix="check the Debian mirror") from exc
    release_sha = hashlib.sha256(r.content).hexdigest()
    release = Release(verify_inrelease(r.content, rings or keyrings()))
    entries = {e["name"]: e for e in release.get("SHA256", [])}
    name = f"main/binary-{ARCH}/Packages.xz"
    if name not in entries:
        raise FetchError(f"{url} lists no {name}", fix="use a complete Debian mirror")
    path = cache.fetch(client, f"{mirror}/dists/{suite}/{name}", entries[name]["sha256"])
    with lzma.open(path, "rt", encoding="utf-8") as f:
        packages = parse_packages(f.read())
    return SuiteIndex(suite=suite, release_sha256=release_sha, packages=packages)


UPDATE_SUITES = ("updates", "security")


def fetch_archive(client: httpx.Client, suite: str, cache: ContentCache,
                  environ: Mapping[str, str], rings: Sequence[Path] | None = None
                  ) -> SuiteIndex:
    """The suite with its stable updates and security updates: each package at the newest
    version of the three (every index signature-checked), and which suite gave it."""
    main = fetch_suite(client, find_mirror(environ), suite, cache, rings)
    updates = [fetch_suite(client, find_security_mirror(environ) if kind == "security"
                           else find_mirror(environ), f"{suite}-{kind}", cache, rings)
               for kind in UPDATE_SUITES]
    return newest(main, updates)


def newest(main: SuiteIndex, updates: Sequence[SuiteIndex]) -> SuiteIndex:
    """``main`` with each package at its newest version among ``updates`` too (Debian's
    version order), remembering which suite gave it."""
    from debian.debian_support import Version

    packages, origin = dict(main.packages), {}
    for index in updates:
        for name, stanza in index.packages.items():
            have = packages.get(name)
            if have is None or Version(stanza.get("Version")) > Version(have.get("Version")):
                packages[name], origin[name] = stanza, index.suite
    return SuiteIndex(suite=main.suite, release_sha256=main.release_sha256,
                      packages=packages, origin=origin)


def deb_url(deb: LockedDeb, environ: Mapping[str, str]) -> str:
    """Where a locked .deb is downloaded from: the security archive's mirror for security
    updates, else the main mirror."""
    mirror = find_security_mirror(environ) if deb.security else find_mirror(environ)
    return f"{mirror}/{deb.filename}"


def suite_version(suite: str, package: str, *, ca_bundle: str | None = None,
                  cache_dir: str | None = None,
                  environ: Mapping[str, str] | None = None) -> str:
    """The version of ``package`` in ``suite`` now (its signed index, from the mirror)."""
    cache = ContentCache(default_cache_dir(cache_dir) / "blobs")
    mirror = find_mirror(os.environ if environ is None else environ)
    with http_client(ca_bundle) as client:
        stanza = fetch_suite(client, mirror, suite, cache).packages.get(package)
    if stanza is None:
        raise LockError(f"Debian {suite} has no package {package}")
    return stanza.get("Version")


def closure(index: SuiteIndex, wanted: Sequence[str]) -> list[Stanza]:
    """The dependency closure of ``wanted`` (Depends and Pre-Depends, no Recommends).

    Alternatives take the first that is already chosen, else the first real package, else
    the first provider of a virtual one. A suite carries one version of each package, so
    version constraints hold by construction and are not re-checked here.
    """
    providers = index.providers()
    chosen: dict[str, Stanza] = {}
    missing: list[str] = []
    queue = list(wanted)
    while queue:
        name = queue.pop(0)
        if name in chosen:
            continue
        stanza = index.packages.get(name)
        if stanza is None:
            real = providers.get(name)
            if real:
                queue.insert(0, real[0])
            else:
                missing.append(name)
            continue
        chosen[name] = stanza
        for relation in ("Pre-Depends", "Depends"):
            for group in _split_list(stanza.get(relation)):
                options = [_bare(o) for o in group.split("|")]
                pick = next((o for o in options if o in chosen), None)
                pick = pick or next((o for o in options if o in index.packages), None)
                pick = pick or next((providers[o][0] for o in options if o in providers), None)
                if pick is None:
                    missing.append(f"{options[0]} (needed by {name})")
                elif pick not in chosen:
                    queue.append(pick)
    if missing:
        raise LockError(
            f"Debian {index.suite} has no package {', '.join(missing)}",
            fix="check the names in apt = [...] (apt-cache search NAME on a Debian machine)")
    return sorted(chosen.values(), key=lambda s: s.name)


SSH_PACKAGES = ("openssh-server",)
# What every Debian image has already (the Essential packages, and apt's libraries): an
# ejected Dockerfile on a registry base leaves them to the base instead of pinning them.
IN_EVERY_IMAGE = frozenset({
    "base-files", "base-passwd", "bash", "bsdutils", "coreutils", "dash", "debianutils",
    "diffutils", "findutils", "grep", "gzip", "hostname", "init-system-helpers", "libc-bin",
    "login", "ncurses-base", "ncurses-bin", "perl-base", "sed", "sysvinit-utils", "tar",
    "util-linux", "libstdc++6", "libgcc-s1"})


def base_packages(spec: Spec, python: str) -> list[str]:
    """The packages the base is the closure of: the runtime's and the spec's apt list."""
    wanted = [*RUNTIME_PACKAGES, *spec.apt]
    if tuple(int(x) for x in python.split(".")) < (3, 10):
        # Debian splits distutils out of these Pythons, and pip before 3.10 imports it.
        wanted.append("python3-distutils")
    return wanted


def profile_apt(spec: Spec) -> dict[str, tuple[str, ...]]:
    out = {}
    for p in spec.profiles:
        extra = (*p.tools, *p.apt, *(SSH_PACKAGES if p.ssh else ()))
        if extra:
            out[p.name] = extra
    return out


def lock_debs(lock: Lock, spec: Spec, *, cache_dir: str | None = None,
              client: httpx.Client | None = None,
              environ: Mapping[str, str] | None = None) -> Lock:
    """Add every .deb of the base (and of each profile's apt packages) to ``lock``."""
    suite = lock.base.suite
    assert suite is not None
    cache = ContentCache(default_cache_dir(cache_dir) / "blobs")
    own = client is None
    client = client or http_client(spec.index.ca_bundle)
    try:
        index = fetch_archive(client, suite, cache, os.environ if environ is None else environ)
    finally:
        if own:
            client.close()
    wanted = base_packages(spec, lock.target.python)
    base = {s.name: s for s in closure(index, wanted)}
    members: dict[str, list[str]] = {}
    stanzas = dict(base)
    for profile, extra in sorted(profile_apt(spec).items()):
        for s in closure(index, [*wanted, *extra]):
            if s.name not in base:
                members.setdefault(s.name, []).append(profile)
                stanzas[s.name] = s
    debs = tuple(
        LockedDeb(name=s.name, version=s.get("Version"), architecture=s.get("Architecture"),
                  filename=s.get("Filename"), sha256=s.get("SHA256"), size=int(s.get("Size")),
                  profiles=tuple(members.get(s.name, ())), suite=index.origin.get(s.name, ""))
        for s in stanzas.values()
    )
    return lock.with_debs(debs, LockedBase(kind="debian", suite=suite,
                                           release_sha256=index.release_sha256))
