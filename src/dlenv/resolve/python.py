"""Lock the Python packages of a target with uv, then pick the one wheel each needs.

uv does the resolution (``uv pip compile --format pylock.toml`` for another platform and
Python); dlenv chooses among the wheels uv lists with ``packaging.tags`` and records each.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from packaging.tags import Tag
from packaging.utils import canonicalize_name, parse_wheel_filename

from dlenv.cache import http_client
from dlenv.errors import BuildError, FetchError, LockError, NoWheelError
from dlenv.fsutil import ensure_dir
from dlenv.lock import LockedWheel
from dlenv.resolve import Target
from dlenv.spec import IndexSettings

UV_TIMEOUT = 900.0  # a resolution that takes longer is stuck (or the network is)


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexConfig:
    """Where packages come from, after the spec and the environment are combined."""

    url: str | None
    extra_urls: tuple[str, ...]
    ca_bundle: str | None
    allow_sdist: bool


def index_config(settings: IndexSettings, target: Target | None,
                 environ: Mapping[str, str]) -> IndexConfig:
    """The spec wins; then uv's and pip's own variables, as users already set them.
    ``target`` adds its own indexes (PyTorch's variant builds)."""
    url = settings.url or environ.get("UV_INDEX_URL") or environ.get("PIP_INDEX_URL")
    extra_env = environ.get("UV_EXTRA_INDEX_URL") or environ.get("PIP_EXTRA_INDEX_URL") or ""
    extra = [*settings.extra_urls, *extra_env.split(),
             *(target.extra_index_urls if target else ())]
    ca = settings.ca_bundle or environ.get("SSL_CERT_FILE") or environ.get("PIP_CERT")
    return IndexConfig(url=url, extra_urls=tuple(dict.fromkeys(extra)), ca_bundle=ca,
                       allow_sdist=settings.allow_sdist)


def target_tags(target: Target) -> list[Tag]:
    """Wheel tags the target interpreter accepts, best first (like pip on that machine)."""
    from packaging import tags

    major, minor = (int(p) for p in target.python.split("."))
    glibc_minor = int(target.wheel_platform.split("_")[2])
    platforms = [f"manylinux_2_{m}_x86_64" for m in range(glibc_minor, 4, -1)]
    legacy = {17: "manylinux2014_x86_64", 12: "manylinux2010_x86_64", 5: "manylinux1_x86_64"}
    with_legacy: list[str] = []
    for p in platforms:
        with_legacy.append(p)
        m = int(p.split("_")[2])
        if m in legacy:
            with_legacy.append(legacy[m])
    with_legacy.append("linux_x86_64")
    return [
        *tags.cpython_tags((major, minor), platforms=with_legacy),
        *tags.compatible_tags((major, minor), "cp" + f"{major}{minor}", platforms=with_legacy),
    ]


def best_wheel(filenames: Iterable[str], tags: Sequence[Tag]) -> str | None:
    rank = {tag: i for i, tag in enumerate(tags)}
    best: tuple[int, str] | None = None
    for filename in filenames:
        _, _, _, wheel_tags = parse_wheel_filename(filename)
        score = min((rank[t] for t in wheel_tags if t in rank), default=None)
        if score is not None and (best is None or score < best[0]):
            best = (score, filename)
    return best[1] if best else None


class PythonResolver(Protocol):
    def compile(self, requirements: Sequence[str], target: Target, index: IndexConfig,
                constraints: Sequence[str] = (), no_binary: Sequence[str] = ()
                ) -> dict[str, Any]:
        """Resolve and return the parsed pylock.toml document; packages in ``no_binary`` may
        (and must) come from their sdist."""
        ...


class UvResolver:
    """Runs ``uv pip compile`` (and ``uv build`` for sdists) with a clean configuration (no
    host pip.conf, no find-links).

    uv's cache lives in ``cache_dir`` (dlenv's own cache, private to this user: a fixed
    directory in the shared temp dir could be made first by another local user)."""

    def __init__(self, uv: str | None = None, environ: Mapping[str, str] | None = None,
                 cache_dir: Path | None = None, timeout: float = UV_TIMEOUT) -> None:
        if uv is None:
            from uv import find_uv_bin

            uv = find_uv_bin()
        self.uv = uv
        self.environ = dict(os.environ if environ is None else environ)
        self.cache_dir = cache_dir
        self.timeout = timeout

    def _run(self, args: Sequence[str], index: IndexConfig, tmp: str, what: str,
             extra_env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [self.uv, *args, "--no-config", "--quiet"]
        if index.url:
            cmd += ["--index-url", index.url]
        for extra in index.extra_urls:
            cmd += ["--extra-index-url", extra]
        env = {k: v for k, v in self.environ.items() if not k.startswith(("PIP_", "UV_"))}
        env["UV_CACHE_DIR"] = self.environ.get("UV_CACHE_DIR", "") or str(
            private_dir(self.cache_dir or Path(tmp, "uv-cache")))
        if index.ca_bundle:
            env["SSL_CERT_FILE"] = index.ca_bundle
        env.update(extra_env or {})
        try:
            return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False,
                                  timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise FetchError(f"uv did not finish {what} within {self.timeout:.0f} s",
                             fix="check the network and the index; a very large set of "
                                 "requirements may need fewer open ranges") from None

    def compile(self, requirements: Sequence[str], target: Target, index: IndexConfig,
                constraints: Sequence[str] = (), no_binary: Sequence[str] = ()
                ) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="dlenv-lock-") as tmp:
            req = Path(tmp, "requirements.in")
            req.write_text("\n".join(requirements) + "\n")
            out = Path(tmp, "pylock.toml")
            args = ["pip", "compile", str(req), "--no-header",
                    "--python-version", target.python, "--python-platform", target.uv_platform,
                    "--format", "pylock.toml", "-o", str(out)]
            if not index.allow_sdist:
                args += ["--only-binary", ":all:"]
            for name in no_binary:
                args += ["--no-binary", name]
            if constraints:
                con = Path(tmp, "constraints.txt")
                con.write_text("\n".join(constraints) + "\n")
                args += ["--constraint", str(con)]
            proc = self._run(args, index, tmp, "resolving")
            if proc.returncode != 0:
                raise explain_uv_failure(proc.stderr, target)
            data: dict[str, Any] = tomllib.loads(out.read_text())
            return data

    def pin_build_requires(self, requires: Sequence[str], index: IndexConfig
                           ) -> tuple[str, ...]:
        """``requires`` (an sdist's build-system requirements) pinned with hashes."""
        with tempfile.TemporaryDirectory(prefix="dlenv-build-") as tmp:
            req = Path(tmp, "build.in")
            req.write_text("\n".join(requires) + "\n")
            out = Path(tmp, "build.txt")
            proc = self._run(["pip", "compile", str(req), "--generate-hashes", "--no-header",
                              "--no-annotate", "--only-binary", ":all:",
                              "--python-version", f"{sys.version_info[0]}.{sys.version_info[1]}",
                              "-o", str(out)],
                             index, tmp, "resolving build requirements")
            if proc.returncode != 0:
                raise LockError(f"the build requirements {', '.join(requires)} cannot be "
                                f"resolved:\n{proc.stderr.strip()}")
            text = out.read_text().replace("\\\n", " ")
            return tuple(" ".join(line.split()) for line in text.splitlines()
                         if line.strip() and not line.lstrip().startswith("#"))

    def build_wheel(self, sdist: Path, build_requires: Sequence[str], epoch: int,
                    index: IndexConfig, out: Path) -> Path:
        """Build ``sdist`` into a wheel in ``out`` in an isolated environment holding exactly
        ``build_requires`` (hash-checked), with SOURCE_DATE_EPOCH = ``epoch``."""
        with tempfile.TemporaryDirectory(prefix="dlenv-build-") as tmp:
            pins = Path(tmp, "build-constraints.txt")
            pins.write_text("\n".join(build_requires) + "\n")
            proc = self._run(["build", str(sdist), "--wheel", "-o", str(out),
                              "--build-constraints", str(pins), "--require-hashes",
                              "--python", sys.executable, "--no-python-downloads"],
                             index, tmp, f"building {sdist.name}",
                             {"SOURCE_DATE_EPOCH": str(epoch), "PYTHONHASHSEED": "0"})
            built = sorted(out.glob("*.whl"))
            if proc.returncode != 0 or len(built) != 1:
                tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
                raise BuildError(f"{sdist.name} did not build into a wheel:\n{tail}")
            return built[0]


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this user can enter (made so when missing)."""
    ensure_dir(path, "uv's cache")
    if path.stat().st_uid == os.getuid():
        path.chmod(0o700)
    return path


def explain_uv_failure(stderr: str, target: Target) -> LockError | FetchError:
    """Turn uv's resolver report into one clear error with a fix."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", stderr).strip()
    tag = f"cp{target.python.replace('.', '')}-{target.wheel_platform}"
    m = re.search(r"(?:Because|and) ([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?(?:[=<>!~][^ ]*)? has no "
                  r"wheels with a matching (?:platform|Python ABI|Python implementation) tag", text)
    if m is None:
        m = re.search(r"([A-Za-z][A-Za-z0-9_.\-]*)(?:[=<>!~,][^ ]*)? (?:has no|have no|only has) "
                      r"(?:usable )?wheels?", text)
    if m is not None:
        name = m.group(1)
        return NoWheelError(
            f"{name} has no wheel for the target {tag}:\n{text}", package=name,
            fix=f"pin a version of {name} that ships a {tag} wheel, or set python to one it has "
                "wheels for (dlenv builds pure-Python sdists itself)",
        )
    if "No solution found" in text or "unsatisfiable" in text:
        return LockError(f"the packages cannot be resolved together for {tag}:\n{text}",
                         fix="loosen the conflicting pins named above")
    if re.search(r"(certificate|SSL|tls)", text, re.I):
        return FetchError(f"TLS failure talking to the package index:\n{text}",
                          fix="set index.ca_bundle (or SSL_CERT_FILE) to your CA bundle")
    if re.search(r"(Failed to fetch|error sending request|dns error|connection|timed out|"
                 r"HTTP status server error|Could not connect)", text, re.I):
        return FetchError(f"the package index could not be reached:\n{text}",
                          fix="check the network, the proxy and index.url, then run again")
    return LockError(f"uv could not resolve the packages:\n{text}",
                     fix="check the index settings and the network")


SizeLookup = Callable[[Sequence[str]], dict[str, int]]


def head_sizes(urls: Sequence[str], ca_bundle: str | None = None) -> dict[str, int]:
    """Sizes of files whose index did not state them, read with HEAD requests."""
    if not urls:
        return {}
    import httpx

    with http_client(ca_bundle) as client:
        def one(url: str) -> tuple[str, int]:
            try:
                r = client.head(url)
                r.raise_for_status()
                return url, int(r.headers["content-length"])
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                raise FetchError(f"cannot read the size of {url}: {exc}") from exc

        with ThreadPoolExecutor(max_workers=8) as pool:
            return dict(pool.map(one, urls))


FromSdist = Callable[[dict[str, Any]], LockedWheel]  # a pylock package -> its built wheel


def wheels_from_pylock(doc: dict[str, Any], target: Target, sizes: SizeLookup = head_sizes,
                       from_sdist: FromSdist | None = None) -> list[LockedWheel]:
    tags = target_tags(target)
    chosen: list[tuple[dict[str, Any], dict[str, Any]]] = []
    built: list[LockedWheel] = []
    for pkg in doc.get("packages", []):
        by_name = {Path(w["url"]).name if "url" in w else w["name"]: w
                   for w in pkg.get("wheels", [])}
        filename = best_wheel(by_name, tags)
        if filename is None and "sdist" in pkg and from_sdist is not None:
            built.append(from_sdist(pkg))
            continue
        if filename is None:
            raise NoWheelError(
                f"{pkg['name']} {pkg.get('version', '')} has no wheel for the target "
                f"cp{target.python.replace('.', '')}-{target.wheel_platform}",
                fix=f"pin a version of {pkg['name']} that ships a wheel for this target",
                package=str(pkg["name"]),
            )
        chosen.append((pkg, by_name[filename]))
    missing = [w["url"] for _, w in chosen if "size" not in w]
    known = sizes(missing)
    return [
        *(LockedWheel(
            name=str(canonicalize_name(pkg["name"])), version=str(pkg["version"]),
            filename=Path(wheel["url"]).name, url=wheel["url"],
            sha256=wheel["hashes"]["sha256"], size=int(wheel.get("size") or known[wheel["url"]]),
        ) for pkg, wheel in chosen),
        *built,
    ]


def newest_upload(doc: dict[str, Any]) -> int | None:
    """Newest upload time among the resolved wheels: a stable SOURCE_DATE_EPOCH."""
    times = [w["upload-time"] for p in doc.get("packages", []) for w in p.get("wheels", [])
             if "upload-time" in w]
    return int(max(times).timestamp()) if times else None
