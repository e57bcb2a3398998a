"""Assemble a Lock from a spec: the target, every wheel, and (for Debian bases) every .deb."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from dlenv.lock import Lock, LockedBase, LockedWheel
from dlenv.resolve import Target
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
    doc = resolver.compile(sets.union, target, index)
    wheels = wheels_from_pylock(doc, target, lookup)
    epoch = newest_upload(doc) or DEFAULT_EPOCH
    if not sets.profiles:
        return tuple(sorted(wheels)), epoch
    pins = [f"{w.name}=={w.version}" for w in wheels]
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

    from dlenv.resolve import resolve_target
    from dlenv.resolve.python import UvResolver, index_config

    env = dict(os.environ if environ is None else environ)
    target = resolve_target(spec)
    index = index_config(spec.index, target, env)
    wheels, epoch = lock_python(spec, target, UvResolver(environ=env), index)
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
