"""The matrix as frozen records (releases, CUDA options, runtime rules, suites) and the
queries resolve and doctor ask of it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from dlenv.compat.names import DISTRIBUTION, Framework

CudaSource = Literal["wheels", "cu11-wheels", "variant-index", "base-image"]


# Compute capabilities NVIDIA has shipped, oldest first; toolkit ranges select from these.
KNOWN_ARCHS: tuple[str, ...] = (
    "3.5", "3.7", "5.0", "5.2", "5.3", "6.0", "6.1", "6.2", "7.0", "7.2", "7.5",
    "8.0", "8.6", "8.7", "8.9", "9.0", "10.0", "10.3", "11.0", "12.0", "12.1",
)  # fmt: skip


def _arch_key(arch: str) -> tuple[int, int]:
    major, minor = arch.split(".")
    return int(major), int(minor)


@dataclass(frozen=True, slots=True, kw_only=True)
class CudaOption:
    """One way a framework release can get CUDA."""

    cuda: str  # "12.2"
    cudnn: str
    source: CudaSource
    extra: str | None = None  # pip extra that pulls the nvidia-* wheels
    variant: str | None = None  # PyTorch's +cuXXX build, served from its own wheel index
    min_sm: str | None = None  # the binaries' own floor, when above the toolkit's
    python_max: str | None = None  # a narrower Python range for this option
    packages: tuple[str, ...] = ()  # requirements that bring CUDA (source cu11-wheels)

    @property
    def major(self) -> str:
        return self.cuda.split(".")[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """A framework release line (``2.15`` covers 2.15.0, 2.15.0.post1, 2.15.1 ...)."""

    framework: Framework
    line: str
    python_min: str
    python_max: str
    manylinux: str
    cuda_options: tuple[CudaOption, ...]
    # With CUDA wheels: a version that cannot be resolved -> the release that fixes it.
    cuda_replace: tuple[tuple[str, str], ...] = ()
    gpu_package: str | None = None

    @property
    def exclude_with_cuda(self) -> tuple[str, ...]:
        return tuple(bad for bad, _ in self.cuda_replace)

    @property
    def distribution(self) -> str:
        return DISTRIBUTION[self.framework]

    def supports_python(self, python: str) -> bool:
        return _py(self.python_min) <= _py(python) <= _py(self.python_max)

    def allowed_by(self, spec: SpecifierSet) -> bool:
        """Whether any version of this line satisfies ``spec``.

        Release lines are probed at their patch and post releases (``versions``), so the
        matrix need not list every patch version PyPI has (JAX's 0.4 line reached 0.4.38).
        """
        return _may_match(self.line, spec) and any(
            spec.contains(v, prereleases=True) for v in _probes(self.line))

    def default_cuda(self) -> CudaOption | None:
        return self.cuda_options[0] if self.cuda_options else None

    def versions(self, spec: SpecifierSet) -> list[Version]:
        """Probe versions of this line that ``spec`` admits (patches 0-99, their .post1)."""
        if not _may_match(self.line, spec):
            return []
        return [v for v in _probes(self.line) if spec.contains(v, prereleases=True)]


def _may_match(line: str, spec: SpecifierSet) -> bool:
    """False when an ``==`` clause of ``spec`` names another line, so no probe can match.

    Every command checks the lock's target against each line of the matrix, and testing all
    200 probes of every line took most of a tenth of a second; a spec almost always pins its
    line with ``==X.Y.*`` or ``==X.Y.Z``. This only skips lines: what it lets through is
    still tested probe by probe, so the answer is the same as without it."""
    wanted = tuple(int(part) for part in line.split("."))
    for clause in spec:
        if clause.operator != "==":
            continue
        prefix = clause.version.removesuffix(".*")
        try:
            pinned = Version(prefix)
        except ValueError:
            continue
        if pinned.epoch:
            continue
        common = min(len(pinned.release), len(wanted))
        if pinned.release[:common] != wanted[:common]:
            return False
    return True


@cache
def _probes(line: str) -> tuple[Version, ...]:
    """A line's probe versions, parsed once per process (every command checks the lock's
    target against the matrix, and parsing them for each line took a tenth of a second)."""
    return tuple(Version(f"{line}.{n}{post}") for n in range(100) for post in ("", ".post1"))


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeRule:
    """Constraints some releases need at run time that their own metadata leaves out."""

    framework: str
    versions: SpecifierSet
    needs: tuple[str, ...]
    why: str


@dataclass(frozen=True, slots=True)
class Suite:
    name: str
    python: str
    glibc: str


@dataclass(frozen=True, slots=True)
class Matrix:
    releases: dict[str, tuple[Release, ...]]
    suites: tuple[Suite, ...]
    driver_floor: dict[str, str]
    arch_ranges: dict[str, tuple[str, str]]
    sources: dict[str, str] = field(default_factory=dict)
    updated: str = ""
    runtime: tuple[RuntimeRule, ...] = ()
    cuda_images: dict[str, str] = field(default_factory=dict)  # CUDA minor -> runtime image

    def runtime_needs(self, release: Release, spec: SpecifierSet) -> list[RuntimeRule]:
        """The rules that cover every version of ``release`` that ``spec`` allows."""
        allowed = release.versions(spec)
        return [r for r in self.runtime if r.framework == release.framework and allowed
                and all(r.versions.contains(v, prereleases=True) for v in allowed)]

    def lines(self, framework: str) -> tuple[Release, ...]:
        return self.releases[framework]

    def suite(self, name: str) -> Suite | None:
        return next((s for s in self.suites if s.name == name), None)

    def suite_for_python(self, python: str) -> Suite | None:
        return next((s for s in self.suites if s.python == python), None)

    def min_driver(self, cuda: str) -> str:
        return self.driver_floor[cuda.split(".")[0]]

    def gpu_archs(self, cuda: str, min_sm: str | None = None) -> tuple[str, ...]:
        """Compute capabilities a build for ``cuda`` runs on (toolkit range, binaries' floor)."""
        key = max(
            (k for k in self.arch_ranges if _py(k) <= _py(cuda)), key=_py, default=None
        )
        if key is None:
            raise KeyError(f"no architecture range for CUDA {cuda}")
        low, high = self.arch_ranges[key]
        if min_sm is not None and _arch_key(min_sm) > _arch_key(low):
            low = min_sm
        return tuple(
            a for a in KNOWN_ARCHS if _arch_key(low) <= _arch_key(a) <= _arch_key(high)
        )


def _py(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _tf(row: dict[str, Any], wheels11: dict[str, Any]) -> Release:
    options: list[CudaOption] = []
    if row["and_cuda"]:
        options.append(
            CudaOption(
                cuda=row["cuda"], cudnn=row["cudnn"], source="wheels", extra="and-cuda",
                python_max=row.get("and_cuda_python_max"),
            )
        )
    else:
        if row["cuda"].startswith("11.") and wheels11:
            # NVIDIA's CUDA 11 wheels, found by the loader through links the build adds.
            options.append(CudaOption(cuda=row["cuda"], cudnn=row["cudnn"],
                                      source="cu11-wheels", packages=tuple(wheels11["packages"])))
        options.append(CudaOption(cuda=row["cuda"], cudnn=row["cudnn"], source="base-image"))
    return Release(
        framework="tensorflow", line=row["line"], python_min=row["python"][0],
        python_max=row["python"][1], manylinux=row["manylinux"], cuda_options=tuple(options),
        cuda_replace=tuple(sorted(row.get("and_cuda_replace", {}).items())),
        gpu_package=row.get("gpu_package"),
    )


def _torch(row: dict[str, Any]) -> Release:
    min_sm: dict[str, str] = row.get("min_sm", {})
    default = CudaOption(
        cuda=row["cuda"], cudnn=row["cudnn"], source="wheels", min_sm=min_sm.get(row["cuda"])
    )
    variants = [
        CudaOption(
            cuda=v, cudnn=row["cudnn"], source="variant-index",
            variant="cu" + v.replace(".", ""),
            min_sm=min_sm.get(v),
        )
        for v in reversed(row["variants"])
        if v != row["cuda"]
    ]
    return Release(
        framework="pytorch", line=row["line"], python_min=row["python"][0],
        python_max=row["python"][1], manylinux=row["manylinux"],
        cuda_options=(default, *variants),
    )


def _jax(row: dict[str, Any]) -> Release:
    options = tuple(
        CudaOption(
            cuda=row["cuda"][extra[4:]], cudnn=row["cudnn"][extra[4:]], source="wheels",
            extra=extra, min_sm=row["min_sm"][extra[4:]],
        )
        for extra in row["extras"]
    )
    return Release(
        framework="jax", line=row["line"], python_min=row["python"][0],
        python_max=row["python"][1], manylinux=row["manylinux"], cuda_options=options,
    )


def parse_matrix(data: dict[str, Any]) -> Matrix:
    releases = {
        "tensorflow": tuple(_tf(r, data["cuda"].get("wheels11", {}))
                            for r in data["tensorflow"]),
        "pytorch": tuple(_torch(r) for r in data["pytorch"]),
        "jax": tuple(_jax(r) for r in data["jax"]),
    }
    suites = tuple(Suite(name, v["python"], v["glibc"]) for name, v in data["debian"].items())
    return Matrix(
        releases=releases,
        suites=suites,
        driver_floor=dict(data["cuda"]["driver"]),
        arch_ranges={k: (v[0], v[1]) for k, v in data["cuda"]["arch"].items()},
        cuda_images=dict(data["cuda"].get("image", {})),
        sources=dict(data.get("sources", {})),
        updated=str(data.get("updated", "")),
        runtime=tuple(RuntimeRule(framework=r["framework"], versions=SpecifierSet(r["versions"]),
                                  needs=tuple(r["needs"]), why=r["why"])
                      for r in data.get("runtime", [])),
    )


@cache
def load_matrix() -> Matrix:
    """The matrix shipped with this dlenv."""
    text = resources.files("dlenv.compat").joinpath("matrix.toml").read_text("utf-8")
    return parse_matrix(tomllib.loads(text))
