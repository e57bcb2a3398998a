"""Assemble a Lock from a spec: the target, every wheel, and (for Debian bases) every .deb."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from dlenv.cache import default_cache_dir, tls_context
from dlenv.errors import LockError
from dlenv.fsutil import shorten
from dlenv.lock import Lock, LockedBase, LockedWheel, read_lock
from dlenv.resolve import Target, resolve_target
from dlenv.resolve.python import (
    IndexConfig,
    PythonResolver,
    SizeLookup,
    head_sizes,
    newest_upload,
    wheels_from_pylock,
)
from dlenv.spec import Profile, Spec

# Zip's epoch; used when the index gives no upload times (wheels inside are older anyway).
DEFAULT_EPOCH = 315532800


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
    """A profile's own packages plus what its switches need (Jupyter for jupyter = true)."""
    names = {canonicalize_name(Requirement(r).name) for r in profile.packages}
    extra = ("jupyterlab",) if profile.jupyter and "jupyterlab" not in names else ()
    return (*profile.packages, *extra)


def python_sets(spec: Spec, target: Target) -> PythonSets:
    base = ((target.requirement,) if target.requirement else ()) + spec.packages
    if "pip" not in {canonicalize_name(Requirement(r).name) for r in base}:
        # Every image gets a locked pip, so `pip list`, `pip show` and scanners work inside.
        base += ("pip",)
    profiles = tuple((p.name, profile_packages(p)) for p in spec.profiles if profile_packages(p))
    return PythonSets(base=base, profiles=profiles)


def lock_python(spec: Spec, target: Target, resolver: PythonResolver, index: IndexConfig,
                sizes: SizeLookup | None = None) -> tuple[tuple[LockedWheel, ...], int]:
    """Resolve every wheel once for the union of profiles, so versions agree across images,
    then mark which wheels only some profiles need."""
    sets = python_sets(spec, target)
    if not sets.union:
        return (), DEFAULT_EPOCH
    lookup = sizes or (lambda urls: head_sizes(urls, index.ca_bundle))
    doc = resolver.compile(sets.union, target, index, target.constraints)
    wheels = wheels_from_pylock(doc, target, lookup)
    epoch = newest_upload(doc) or DEFAULT_EPOCH
    if not sets.profiles:
        return tuple(sorted(wheels)), epoch
    pins = [*target.constraints, *(f"{w.name}=={w.version}" for w in wheels)]
    base_names = _names(resolver.compile(sets.base, target, index, pins)) if sets.base else set()
    members: dict[str, set[str]] = {}
    for name, extra in sets.profiles:
        for pkg in _names(resolver.compile((*sets.base, *extra), target, index, pins)):
            members.setdefault(pkg, set()).add(name)
    out = []
    for w in wheels:
        only = () if w.name in base_names else tuple(sorted(members.get(w.name, ())))
        out.append(LockedWheel(name=w.name, version=w.version, filename=w.filename, url=w.url,
                               sha256=w.sha256, size=w.size, profiles=only))
    return tuple(sorted(out)), epoch


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
        spec_digest=spec.digest(), source_date_epoch=epoch, target=target.to_dict(),
        base=base or base_of(target), wheels=tuple(sorted(wheels)),
    )


def lock_project(spec: Spec, *, cache_dir: str | None = None,
                 environ: dict[str, str] | None = None) -> Lock:
    """Resolve the target, every wheel and (for a Debian base) every .deb of ``spec``."""
    import os

    from dlenv.resolve.python import UvResolver, index_config

    env = dict(os.environ if environ is None else environ)
    target = resolve_target(spec)
    index = index_config(spec.index, target, env)
    tls_context(index.ca_bundle)  # a missing or unreadable bundle: say so before uv runs
    resolver = UvResolver(environ=env, cache_dir=default_cache_dir(cache_dir) / "uv")
    wheels, epoch = lock_python(spec, target, resolver, index)
    lock = create_lock(spec, target, wheels, epoch)
    if target.suite:
        from dlenv.build.debian import lock_debs

        lock = lock_debs(lock, spec, cache_dir=cache_dir, environ=env)
    else:
        from dataclasses import replace

        from dlenv.oci.registry import Reference, RegistryClient

        client = RegistryClient()
        try:
            digest = client.resolve_digest(Reference.parse(target.base))
        finally:
            client.close()
        lock = replace(lock, base=LockedBase(kind="image", ref=target.base, digest=digest))
    return lock


def _normal(target: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in target.items() if v is not None and v != [] and v != ()}


def check_lock(spec: Spec, lock: Lock) -> None:
    """A lock may be used for ``spec`` only when it was made for it (else ``StaleLockError``)
    and says what resolving the spec decides: the same target and base, and a locked version
    within every requirement of the spec. Anything else (a lock edited by hand or by a
    stranger's commit) is refused with a ``LockError`` before it reaches a build."""
    lock.check_fresh(spec.digest())
    target = resolve_target(spec)
    expected, found = _normal(target.to_dict()), _normal(lock.target)
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


def load_lock(spec: Spec, path: Path) -> Lock:
    """Read ``path`` and check it against ``spec`` (``check_lock``)."""
    lock = read_lock(path)
    check_lock(spec, lock)
    return lock
