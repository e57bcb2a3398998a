"""A lock's Python packages in the forms other tools read: ``requirements.txt`` with hashes
(pip's ``--require-hashes``), ``pylock.toml`` (PEP 751, through ``packaging.pylock``) and a
conda ``environment.yml`` whose pip section holds the pins. Pure: text or data from the lock.
"""

from __future__ import annotations

from typing import Any, Literal

from packaging.utils import canonicalize_name

from dlenv.errors import LockError
from dlenv.lock import Lock, LockedWheel

Export = Literal["requirements", "pylock", "conda"]


def _pin(w: LockedWheel) -> str:
    # a wheel dlenv built from an sdist is pinned by the sdist's hash: that is what pip gets
    return f"{w.name}=={w.version} --hash=sha256:{w.sdist.sha256 if w.sdist else w.sha256}"


def requirements_txt(lock: Lock, profile: str | None, source: str) -> str:
    head = [f"# {source}: the Python packages of dlenv.lock"
            + (f" (profile {profile})" if profile else ""),
            f"# for Python {lock.target.python} on {lock.target.platform or 'linux/amd64'}: "
            "pip install --require-hashes --no-deps -r requirements.txt"]
    return "\n".join([*head, *(_pin(w) for w in lock.wheels_for(profile))]) + "\n"


def pylock(lock: Lock, profile: str | None) -> dict[str, Any]:
    """``pylock.toml``'s data, validated by ``packaging.pylock``."""
    from packaging.markers import Marker
    from packaging.pylock import Package, PackageSdist, PackageWheel, Pylock
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    machine = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}.get(
        lock.target.platform or "linux/amd64", "x86_64")
    packages = []
    for w in lock.wheels_for(profile):
        if w.sdist is not None:
            files: dict[str, Any] = {"sdist": PackageSdist(
                name=w.sdist.url.rsplit("/", 1)[-1], url=w.sdist.url, size=w.sdist.size,
                hashes={"sha256": w.sdist.sha256})}
        elif not w.url:
            raise LockError(f"the lock has no URL for {w.filename}, and pylock.toml needs one",
                            fix="run 'dlenv lock' again")
        else:
            files = {"wheels": [PackageWheel(name=w.filename, url=w.url, size=w.size,
                                             hashes={"sha256": w.sha256})]}
        packages.append(Package(name=canonicalize_name(w.name), version=Version(w.version),
                                **files))
    data = Pylock(
        lock_version=Version("1.0"), created_by="dlenv",
        environments=[Marker(f'sys_platform == "linux" and platform_machine == "{machine}" '
                             f'and python_version == "{lock.target.python}"')],
        requires_python=SpecifierSet(f"=={lock.target.python}.*"), packages=packages)
    data.validate()
    out: dict[str, Any] = dict(data.to_dict())
    return out


def conda_environment(lock: Lock, profile: str | None, name: str) -> dict[str, Any]:
    """A conda environment: Python from conda-forge, every locked package through pip."""
    return {"name": name, "channels": ["conda-forge"],
            "dependencies": [f"python={lock.target.python}", "pip",
                             {"pip": [f"{w.name}=={w.version}"
                                      for w in lock.wheels_for(profile)]}]}
