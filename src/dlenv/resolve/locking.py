"""Assemble a Lock from a spec: the target, every wheel, and (for Debian bases) every .deb."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from dlenv.cache import ContentCache, default_cache_dir, http_client, tls_context
from dlenv.compat import DISTRIBUTION, load_matrix
from dlenv.errors import LockError, NoWheelError, ResolveError
from dlenv.fsutil import shorten
from dlenv.lock import ZIP_EPOCH, Lock, LockedBase, LockedWheel, read_lock
from dlenv.resolve import Choice, Target, resolve_target
from dlenv.resolve.debian import lock_debs
from dlenv.resolve.python import (
    IndexConfig,
    PythonResolver,
    SizeLookup,
    UvResolver,
    head_sizes,
    index_config,
    newest_upload,
    wheels_from_pylock,
)
from dlenv.resolve.sdist import SdistBuilds
from dlenv.spec import SERVE_PACKAGES, Profile, Spec

# Used when the index gives no upload times (wheels inside are older anyway).
DEFAULT_EPOCH = ZIP_EPOCH


@dataclass(frozen=True, slots=True)
class PythonSets:
    """The requirement sets one spec locks: what every image has, and what each profile adds."""

    base: tuple[str, ...]
    profiles: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def union(self) -> tuple[str, ...]:
        out = list(self.base)
        for _, extra in self.profiles:
            out += [r for r in extra if r not in out]
        return tuple(out)


def profile_packages(profile: Profile) -> tuple[str, ...]:
    """A profile's own packages plus what its switches need (Jupyter for jupyter = true,
    dlenv's model server for a serve profile that runs it)."""
    names = {canonicalize_name(Requirement(r).name) for r in profile.packages}
    wanted = (("jupyterlab",) if profile.jupyter else ()) \
        + (SERVE_PACKAGES if profile.serving else ())
    return (*profile.packages, *(p for p in wanted if canonicalize_name(p) not in names))


def python_sets(spec: Spec, target: Target) -> PythonSets:
    base = ((target.requirement,) if target.requirement else ()) + target.cuda_packages \
        + spec.packages
    if "pip" not in {canonicalize_name(Requirement(r).name) for r in base}:
        # Every image gets a locked pip, so `pip list`, `pip show` and scanners work inside.
        base += ("pip",)
    profiles = tuple((p.name, profile_packages(p)) for p in spec.profiles if profile_packages(p))
    return PythonSets(base=base, profiles=profiles)


MAX_SDISTS = 10  # source-only packages one lock may build


def spec_requirements(spec: Spec) -> tuple[str, ...]:
    """The distributions the spec names itself (packages of the spec and its profiles)."""
    raw = [*spec.packages, *(r for p in spec.profiles for r in p.packages)]
    return tuple(dict.fromkeys(str(canonicalize_name(Requirement(r).name)) for r in raw))


def lock_python(spec: Spec, target: Target, resolver: PythonResolver, index: IndexConfig,
                sizes: SizeLookup | None = None,
                sdists: Callable[..., LockedWheel] | None = None
                ) -> tuple[tuple[LockedWheel, ...], int]:
    """Resolve every wheel once for the union of profiles, so versions agree across images,
    then mark which wheels only some profiles need. A package published only as source is
    built into a wheel by ``sdists`` (``SdistBuilds.lock`` of a client: pure Python only)
    when it is given."""
    sets = python_sets(spec, target)
    if not sets.union:
        return (), DEFAULT_EPOCH
    lookup = sizes or (lambda urls: head_sizes(urls, index.ca_bundle))
    no_binary: list[str] = []  # the source-only packages, found while resolving

    def compile_(requirements: Sequence[str], constraints: Sequence[str]) -> dict[str, Any]:
        return _compile(resolver, requirements, target, index, constraints, no_binary,
                        can_build=sdists is not None)

    doc = compile_(sets.union, target.constraints)
    tag = f"cp{target.python.replace('.', '')}-{target.wheel_platform}"
    from_sdist = None if sdists is None else (lambda pkg: sdists(
        str(canonicalize_name(pkg["name"])), str(pkg["version"]), pkg["sdist"], tag))
    wheels = wheels_from_pylock(doc, target, lookup, from_sdist)
    epoch = newest_upload(doc) or DEFAULT_EPOCH
    if not sets.profiles:
        return tuple(sorted(wheels)), epoch
    pins = [*target.constraints, *(f"{w.name}=={w.version}" for w in wheels)]
    base_names = _names(compile_(sets.base, pins)) if sets.base else set()
    members: dict[str, set[str]] = {}
    for name, extra in sets.profiles:
        for pkg in _names(compile_((*sets.base, *extra), pins)):
            members.setdefault(pkg, set()).add(name)
    out = []
    for w in wheels:
        only = () if w.name in base_names else tuple(sorted(members.get(w.name, ())))
        out.append(replace(w, profiles=only))
    return tuple(sorted(out)), epoch


def _compile(resolver: PythonResolver, requirements: Sequence[str], target: Target,
             index: IndexConfig, constraints: Sequence[str], no_binary: list[str], *,
             can_build: bool) -> dict[str, Any]:
    """Resolve; a package the resolver finds no wheel for may then come from its sdist
    (``no_binary`` grows). When that does not resolve either, the wheel problem stands."""
    first: NoWheelError | None = None
    while True:
        try:
            return resolver.compile(requirements, target, index, constraints, tuple(no_binary))
        except NoWheelError as exc:
            name = str(canonicalize_name(exc.package))
            if not can_build or name in no_binary or len(no_binary) >= MAX_SDISTS:
                raise (first or exc) from None
            first = first or exc
            no_binary.append(name)
        except LockError:
            if first is not None:
                raise first from None
            raise


def _names(doc: dict[str, object]) -> set[str]:
    packages = doc.get("packages", [])
    assert isinstance(packages, list)
    return {str(canonicalize_name(p["name"])) for p in packages}


def base_of(target: Target) -> LockedBase:
    if target.suite:
        return LockedBase(kind="debian", suite=target.suite)
    return LockedBase(kind="image", ref=target.base)


def create_lock(spec: Spec, target: Target, wheels: Sequence[LockedWheel], epoch: int,
                base: LockedBase | None = None) -> Lock:
    return Lock(
        spec_digest=spec.digest(), source_date_epoch=epoch, target=target.locked(),
        base=base or base_of(target), wheels=tuple(sorted(wheels)),
    )


def lock_project(spec: Spec, *, cache_dir: str | None = None,
                 environ: dict[str, str] | None = None) -> Lock:
    """Resolve the target, every wheel and (for a Debian base) every .deb of ``spec``."""
    env = dict(os.environ if environ is None else environ)
    target = resolve_target(spec)
    index = index_config(spec.index, target, env)
    tls_context(index.ca_bundle)  # a missing or unreadable bundle: say so before uv runs
    resolver = UvResolver(environ=env, cache_dir=default_cache_dir(cache_dir) / "uv")
    cache = ContentCache(default_cache_dir(cache_dir) / "blobs")

    def lock_with(t: Target) -> tuple[tuple[LockedWheel, ...], int]:
        for_t = index_config(spec.index, t, env)
        builds = SdistBuilds(resolver, cache, for_t)
        return lock_python(spec, t, resolver, for_t, sdists=partial(builds.lock, client))

    with http_client(index.ca_bundle) as client:
        target, wheels, epoch = lock_choosing(spec, target, lock_with)
    lock = create_lock(spec, target, wheels, epoch)
    if target.suite:
        lock = lock_debs(lock, spec, cache_dir=cache_dir, environ=env)
    else:
        from dlenv.oci.registry import Reference, RegistryClient  # httpx: only when asked

        registry = RegistryClient()
        try:
            digest = registry.resolve_digest(Reference.parse(target.base))
        finally:
            registry.close()
        lock = replace(lock, base=LockedBase(kind="image", ref=target.base, digest=digest))
    return lock


MAX_CHOICES = 6  # resolutions tried with other lines or Pythons before giving up


def lock_choosing(spec: Spec, target: Target,
                  lock_with: Callable[[Target], tuple[tuple[LockedWheel, ...], int]]
                  ) -> tuple[Target, tuple[LockedWheel, ...], int]:
    """Lock the packages for ``target``; when they cannot be locked there and the spec leaves
    the choice open, let them choose: the framework line a package depends on
    (torchvision 0.21 -> torch 2.6), or an older Python when one has no wheel for the newest
    (tokenizers 0.19 -> not 3.13). The target records what chose (``chosen_by``)."""
    first: LockError | None = None
    tried = {(target.framework_line, target.python)}
    for _ in range(MAX_CHOICES):
        try:
            wheels, epoch = lock_with(target)
            return target, wheels, epoch
        except LockError as exc:
            first = first or exc
            following = _next_target(spec, target, exc, tried)
            if following is None:
                break
            target = following
            tried.add((target.framework_line, target.python))
    assert first is not None
    if len(tried) > 1:
        first.fix = (first.fix or "") + " (dlenv also tried " + ", ".join(
            f"{line or 'no framework'} on Python {py}" for line, py in sorted(tried, key=str)
            [1:]) + ")"
    raise first


def _next_target(spec: Spec, target: Target, exc: LockError,
                 tried: set[tuple[str | None, str]]) -> Target | None:
    """The target to try after the resolver's failure ``exc``, or None."""
    matrix = load_matrix()
    message = str(exc)
    if target.framework and spec.framework is not None:
        dist = DISTRIBUTION[target.framework]
        found = re.search(rf"(\S+) depends on {re.escape(dist)}(?:\[[^\]]*\])?"
                          r"((?:[<>=!~]=?[A-Za-z0-9.*+]+,?)+)", message)
        if found:
            try:
                needed = SpecifierSet(found.group(2).rstrip(","))
            except InvalidSpecifier:
                needed = None
            allowed = spec.framework.specifier_set()
            for release in reversed(matrix.lines(target.framework)):
                if needed is not None and release.allowed_by(allowed) \
                        and release.versions(needed) and \
                        all(line != release.line for line, _ in tried):
                    why = _because(target, f"{found.group(1)} depends on {dist}{needed}")
                    # Keep a Python chosen before (the newest had no wheels), if the line can.
                    for python in dict.fromkeys([target.python if target.chosen_by else None,
                                                 None]):
                        with contextlib.suppress(ResolveError):
                            return resolve_target(spec, choice=Choice(
                                line=release.line, python=python, why=why))
    needs_python = re.search(r"([A-Za-z][\w.-]*)==\S+ depends on Python", message)
    package = exc.package if isinstance(exc, NoWheelError) else \
        needs_python.group(1) if needs_python else None
    if package and spec.python is None and spec.base.kind == "debian" and not spec.base.suite:
        lower = sorted({s.python for s in matrix.suites
                        if _pyver(s.python) < _pyver(target.python)}, key=_pyver, reverse=True)
        for python in lower:
            if (target.framework_line, python) in tried:
                continue
            why = _because(target, f"{package} has no wheel for Python {target.python}")
            with contextlib.suppress(ResolveError):
                return resolve_target(spec, choice=Choice(line=target.framework_line,
                                                          python=python, why=why))
    return None


def _because(target: Target, why: str) -> str:
    """What chose, added to what chose before (a Python, then a line: both are reasons)."""
    reasons = [*(target.chosen_by or "").split("; "), why]
    return "; ".join(r for r in dict.fromkeys(reasons) if r)


def _pyver(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def check_lock(spec: Spec, lock: Lock) -> None:
    """A lock may be used for ``spec`` only when it was made for it (else ``StaleLockError``)
    and says what resolving the spec decides: the same target and base, and a locked version
    within every requirement of the spec. Anything else (a lock edited by hand or by a
    stranger's commit) is refused with a ``LockError`` before it reaches a build."""
    lock.check_fresh(spec.digest())
    target = target_of(spec, lock)
    expected, found = target.locked().to_dict(), lock.target.to_dict()
    problems = [f"target.{k} is {shorten(found.get(k))}, the spec gives "
                f"{shorten(expected.get(k))}"
                for k in sorted(set(expected) | set(found), key=str)
                if expected.get(k) != found.get(k)]
    base = base_of(target)
    if (lock.base.kind, lock.base.suite, lock.base.ref) != (base.kind, base.suite, base.ref):
        problems.append(f"base is {lock.base.kind} {shorten(lock.base.suite or lock.base.ref)}"
                        f", the spec gives {base.kind} {shorten(base.suite or base.ref)}")
    if base.kind == "debian" and not lock.debs:
        problems.append("a Debian base needs its .debs, and the lock has none")
    versions = {w.name: w.version for w in lock.wheels}
    for raw in python_sets(spec, target).union:
        req = Requirement(raw)
        if req.marker is not None or req.url:
            continue  # uv decided these for the target; nothing simple to compare
        name = str(canonicalize_name(req.name))
        if name not in versions:
            problems.append(f"{shorten(raw)} is in the spec and not in the lock")
        elif not req.specifier.contains(versions[name], prereleases=True):
            problems.append(f"the lock has {name} {shorten(versions[name])}, the spec asks "
                            f"for {shorten(raw)}")
    for raw in target.constraints:  # what the framework needs at run time, if locked
        req = Requirement(raw)
        name = str(canonicalize_name(req.name))
        if name in versions and not req.specifier.contains(versions[name], prereleases=True):
            problems.append(f"the lock has {name} {shorten(versions[name])}, and "
                            f"{target.framework} {target.framework_line} needs {raw}")
    if problems:
        raise LockError(f"{lock.source} does not match {spec.source}: " + "; ".join(problems[:5])
                        + (f" and {len(problems) - 5} more" if len(problems) > 5 else ""),
                        fix="the lock was edited or made by another dlenv; run 'dlenv lock' "
                            "to rewrite it")


def target_of(spec: Spec, lock: Lock) -> Target:
    """The target ``spec`` resolves to with the choice its lock records (what the packages
    chose), or a LockError when the spec does not allow that choice."""
    locked = lock.target
    choice = Choice(line=locked.framework_line, python=locked.python,
                    why=locked.chosen_by) if locked.chosen_by else None
    try:
        return resolve_target(spec, choice=choice)
    except ResolveError as exc:
        raise LockError(f"{lock.source} does not match {spec.source}: {exc.message}",
                        fix="run 'dlenv lock' to rewrite it") from None


def load_lock(spec: Spec, path: Path) -> Lock:
    """Read ``path`` and check it against ``spec`` (``check_lock``)."""
    lock = read_lock(path)
    check_lock(spec, lock)
    return lock
