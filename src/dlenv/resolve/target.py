"""``resolve_target`` (pure): a spec becomes a Target (Python, base suite, wheel platform,
CUDA, driver floor), each choice a ``Decision`` with its reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet

from dlenv.compat import CudaOption, Matrix, Release, load_matrix
from dlenv.errors import ResolveError
from dlenv.lock import TARGET_FIELDS, LockedTarget
from dlenv.spec import Spec

PLATFORM = "linux/amd64"


# uv names target glibc versions up to this one; newer suites resolve against it (a wheel
# tagged for an older glibc runs on a newer one, so this only forgoes hypothetical wheels).
_UV_MAX_GLIBC_MINOR = 40
_MANYLINUX_GLIBC = {"manylinux1": "2.5", "manylinux2010": "2.12", "manylinux2014": "2.17"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    key: str
    value: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    """What resolving the packages chose among what the spec allows: a framework line and a
    Python older than the newest, and why (the package that decided)."""

    line: str | None = None
    python: str | None = None
    why: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Everything the lock and the build need to know about where the environment runs."""

    python: str
    base: str  # "debian:bookworm" or an image reference
    suite: str | None  # Debian suite of a native base
    glibc: str | None
    platform: str
    wheel_platform: str  # e.g. "manylinux_2_36_x86_64"
    framework: str | None
    framework_line: str | None
    requirement: str | None  # the framework requirement handed to the resolver
    cuda: str | None
    cudnn: str | None
    min_driver: str | None
    gpu_archs: tuple[str, ...]
    cuda_source: str | None  # wheels | cu11-wheels | variant-index | base-image
    extra_index_urls: tuple[str, ...]
    decisions: tuple[Decision, ...]
    constraints: tuple[str, ...] = ()  # what the framework needs at run time (matrix rules)
    cuda_packages: tuple[str, ...] = ()  # requirements that bring CUDA (cu11-wheels)
    chosen_by: str | None = None  # Choice.why, when the packages chose line or Python

    @property
    def uv_platform(self) -> str:
        return "x86_64-" + self.wheel_platform.removesuffix("_x86_64")

    def to_dict(self) -> dict[str, object]:
        return {
            "python": self.python, "base": self.base, "suite": self.suite, "glibc": self.glibc,
            "platform": self.platform, "wheel_platform": self.wheel_platform,
            "framework": self.framework, "framework_line": self.framework_line,
            "requirement": self.requirement, "cuda": self.cuda, "cudnn": self.cudnn,
            "min_driver": self.min_driver, "gpu_archs": list(self.gpu_archs),
            "cuda_source": self.cuda_source, "extra_index_urls": list(self.extra_index_urls),
            "constraints": list(self.constraints), "chosen_by": self.chosen_by,
            "cuda_packages": list(self.cuda_packages),
        }

    def locked(self) -> LockedTarget:
        """What a lock records of this target: everything but the decisions' reasons."""
        return LockedTarget(**{f: getattr(self, f) for f in TARGET_FIELDS})

    @property
    def choice(self) -> Choice:
        return Choice(line=self.framework_line, python=self.python, why=self.chosen_by or "")


def _pyver(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def _python_of_image(ref: str) -> str | None:
    m = re.search(r"(?:^|/)python:(3\.\d+)", ref)
    return m.group(1) if m else None


def _is_cuda_image(ref: str) -> bool:
    return bool(re.search(r"(?:^|/)(nvidia/)?cuda:", ref))


@dataclass(frozen=True, slots=True)
class _Candidate:
    release: Release
    python: str
    option: CudaOption | None


def _cuda_option(
    release: Release, spec: Spec, python: str
) -> tuple[CudaOption | None, str | None]:
    """The CUDA option for this release, or the reason none fits."""
    if spec.accelerator != "cuda":
        return None, None
    options = [o for o in release.cuda_options
               if spec.cuda_major is None or o.major == spec.cuda_major]
    label = f"{release.framework} {release.line}"
    if not options:
        have = ", ".join(sorted({o.cuda for o in release.cuda_options}))
        return None, f"{label} has no CUDA {spec.cuda_major} build (it has CUDA {have})"
    image_base = spec.base.kind == "image"
    cuda_image = image_base and _is_cuda_image(spec.base.ref or "")
    reasons = []
    for option in options:
        if option.source == "base-image" and not image_base:
            reasons.append(
                f"{label} ships no CUDA wheels (tensorflow[and-cuda] starts at 2.14), so CUDA "
                f"{option.cuda} must come from a CUDA base image such as "
                + load_matrix().cuda_images.get(option.cuda, f"nvidia/cuda with CUDA "
                                                             f"{option.cuda}")
            )
            continue
        if option.source != "base-image" and cuda_image:
            reasons.append(
                f"{label} brings CUDA {option.cuda} as nvidia-* wheels and the base image "
                f"{spec.base.ref} brings CUDA too; never both (2-3 GB twice, and clashing "
                "libraries): use a plain base such as debian:bookworm"
            )
            continue
        if option.python_max and _pyver(python) > _pyver(option.python_max):
            reasons.append(
                f"{release.distribution}[{option.extra}] {release.line} pulls a dependency "
                f"with no wheel for Python {python} (highest is {option.python_max})"
            )
            continue
        return option, None
    return None, reasons[0]


def _check(release: Release, python: str, spec: Spec) -> tuple[CudaOption | None, str | None]:
    if not release.supports_python(python):
        return None, (
            f"{release.framework} {release.line} ships wheels for Python "
            f"{release.python_min}–{release.python_max}, not {python}"
        )
    return _cuda_option(release, spec, python)


def _python_candidates(spec: Spec, matrix: Matrix) -> tuple[list[str], str]:
    if spec.python:
        return [spec.python], "set in the spec"
    if spec.base.kind == "debian" and spec.base.suite:
        suite = matrix.suite(spec.base.suite)
        assert suite is not None
        return [suite.python], f"python3 of Debian {suite.name}"
    if spec.base.kind == "image":
        found = _python_of_image(spec.base.ref or "")
        if found:
            return [found], f"from the base image tag {spec.base.ref}"
        raise ResolveError(
            f"{spec.source}: base: dlenv cannot tell which Python {spec.base.ref} has",
            fix='set python = "3.X" in the spec',
        )
    ordered = sorted(matrix.suites, key=lambda s: _pyver(s.python), reverse=True)
    return [s.python for s in ordered], "the newest Python of a Debian suite the framework supports"


def _alternatives(spec: Spec, matrix: Matrix, releases: tuple[Release, ...],
                  wanted: list[Release], python: str) -> list[str]:
    """Nearest working (release, Python) pairs: same release first, then nearby releases."""
    pythons = sorted({s.python for s in matrix.suites}, key=_pyver)
    wanted_idx = releases.index(wanted[0]) if wanted else len(releases) - 1
    scored: list[tuple[float, str]] = []
    for idx, release in enumerate(releases):
        for py in pythons:
            option, reason = _check(release, py, spec)
            if reason is not None:
                continue
            suite = matrix.suite_for_python(py)
            base = (str(spec.base) if spec.base.kind == "image" or suite is None
                    else f"debian:{suite.name}")
            score = abs(idx - wanted_idx) * 2 + (0 if py == python else 1)
            cuda = f", CUDA {option.cuda}" if option else ""
            scored.append((score, f"{release.framework} {release.line} with Python {py} "
                                  f"(base {base}{cuda})"))
    return [text for _, text in sorted(scored)[:3]]


def resolve_target(spec: Spec, matrix: Matrix | None = None, *,
                   choice: Choice | None = None) -> Target:
    """Decide the target of ``spec``; raise ResolveError naming nearby working combinations.

    ``choice`` narrows it to a framework line and a Python the packages chose (the lock
    records it, so the same target comes out again); both must be allowed by the spec."""
    matrix = matrix or load_matrix()
    decisions: list[Decision] = []
    pythons, py_reason = _python_candidates(spec, matrix)
    if choice is not None and choice.python and choice.why:
        if choice.python not in pythons:
            raise ResolveError(f"{spec.source}: python {choice.python} is not one the spec "
                               f"allows ({', '.join(pythons)})", fix="run 'dlenv lock'")
        if choice.python != pythons[0]:
            py_reason = choice.why
        pythons = [choice.python]
    release: Release | None = None
    option: CudaOption | None = None
    python = pythons[0]

    if spec.framework is not None:
        releases = matrix.lines(spec.framework.name)
        wanted = [r for r in releases if r.allowed_by(spec.framework.specifier_set())]
        newest = wanted[-1].line if wanted else None
        if choice is not None and choice.line and choice.why:
            wanted = [r for r in wanted if r.line == choice.line]
            if not wanted:
                raise ResolveError(f"{spec.source}: framework: line {choice.line} is not one "
                                   "the spec allows", fix="run 'dlenv lock'")
        if not wanted:
            raise ResolveError(
                f"{spec.source}: framework: no {spec.framework.name} release in the matrix "
                f"matches {spec.framework.specifier!r} (known: {releases[0].line}–"
                f"{releases[-1].line}, matrix of {matrix.updated})",
                fix="pick a version the matrix lists (dlenv matrix "
                f"{spec.framework.name}) or update dlenv",
            )
        # The reason shown for a refusal is the newest wanted release's: a CUDA or dependency
        # problem with a Python it supports says more than "wrong Python".
        reasons: list[str] = []
        for candidate in reversed(wanted):
            for py in pythons:
                opt, reason = _check(candidate, py, spec)
                if reason is None:
                    release, option, python = candidate, opt, py
                    break
                if candidate is wanted[-1]:
                    reasons.append(reason)
            if release:
                break
        if release is None:
            best = next((r for r in reasons if "ships wheels for Python" not in r), reasons[0])
            raise ResolveError(
                f"{spec.source}: {best}",
                alternatives=_alternatives(spec, matrix, releases, wanted, pythons[0]),
            )
        decisions.append(Decision(
            key="framework", value=f"{release.framework} {release.line}",
            reason=choice.why if choice is not None and choice.why and choice.line != newest else
            f"newest release line matching '{spec.framework.specifier or 'any'}' "
            f"that supports Python {python}"))
    decisions.append(Decision(key="python", value=python, reason=py_reason))

    base, suite_name, glibc = _decide_base(spec, matrix, python, decisions)
    wheel_platform = _wheel_platform(glibc, release, decisions)

    requirement = None
    constraints: list[str] = []
    extra_indexes: list[str] = []
    cuda = cudnn = min_driver = cuda_source = None
    cuda_packages: tuple[str, ...] = ()
    archs: tuple[str, ...] = ()
    if release is not None:
        requirement = _framework_requirement(spec, release, option, decisions)
        assert spec.framework is not None
        for rule in matrix.runtime_needs(release, spec.framework.specifier_set()):
            constraints += [n for n in rule.needs if n not in constraints]
            decisions.append(Decision(
                key="constraints", value=", ".join(rule.needs),
                reason=f"{release.framework} {rule.versions} is {rule.why}"))
        if option is not None:
            cuda, cudnn, cuda_source = option.cuda, option.cudnn, option.source
            cuda_packages = option.packages
            min_driver = matrix.min_driver(option.cuda)
            archs = matrix.gpu_archs(option.cuda, option.min_sm)
            if option.variant:
                extra_indexes.append(_pytorch_index(spec, option.variant))
            decisions += [
                Decision(key="cuda", value=cuda, reason=_cuda_reason(release, option)),
                Decision(key="cudnn", value=cudnn, reason=f"the cuDNN {release.framework} "
                         f"{release.line} was built and tested with"),
                Decision(key="min_driver", value=min_driver,
                         reason=f"CUDA {option.major}.x minor-version compatibility needs "
                                f"driver >= {min_driver}"),
                Decision(key="gpu_archs", value=" ".join(archs),
                         reason=f"compute capabilities CUDA {cuda} targets"
                         + (f", from {option.min_sm} up as the binaries ship"
                            if option.min_sm else "")),
            ]
        elif release.framework == "pytorch" and spec.index.pytorch_url:
            extra_indexes.append(_pytorch_index(spec, "cpu"))
            decisions.append(Decision(key="cuda", value="none",
                                      reason="the CPU build from PyTorch's cpu wheel index"))
        elif release.framework == "pytorch":
            decisions.append(Decision(
                key="cuda", value="none",
                reason="PyPI's torch wheel, which pulls GBs of CUDA wheels it will not use on "
                       "a CPU: set index.pytorch_url to get the small CPU build"))
    if spec.accelerator == "cuda" and release is None:
        raise ResolveError(f"{spec.source}: accelerator: CUDA needs a framework that brings it",
                           fix='set framework = "..." or accelerator = "cpu"')

    return Target(
        python=python, base=base, suite=suite_name, glibc=glibc, platform=PLATFORM,
        wheel_platform=wheel_platform,
        framework=release.framework if release else None,
        framework_line=release.line if release else None,
        requirement=requirement, cuda=cuda, cudnn=cudnn, min_driver=min_driver,
        gpu_archs=archs, cuda_source=cuda_source, extra_index_urls=tuple(extra_indexes),
        decisions=tuple(decisions), constraints=tuple(constraints),
        chosen_by=choice.why if choice is not None and choice.why else None,
        cuda_packages=cuda_packages,
    )


def _decide_base(spec: Spec, matrix: Matrix, python: str,
                 decisions: list[Decision]) -> tuple[str, str | None, str | None]:
    if spec.base.kind == "image":
        decisions.append(Decision(key="base", value=str(spec.base), reason="set in the spec"))
        return str(spec.base), None, None
    if spec.base.suite:
        suite = matrix.suite(spec.base.suite)
        assert suite is not None
        if suite.python != python:
            other = matrix.suite_for_python(python)
            raise ResolveError(
                f"{spec.source}: python: Debian {suite.name} provides Python {suite.python}, "
                f"not {python}",
                fix=(f"use base = \"debian:{other.name}\"" if other
                     else f'use python = "{suite.python}" or an image with Python {python}'),
            )
        decisions.append(Decision(key="base", value=f"debian:{suite.name}",
                                  reason="set in the spec"))
        return f"debian:{suite.name}", suite.name, suite.glibc
    found = matrix.suite_for_python(python)
    if found is None:
        have = ", ".join(f"{s.name} ({s.python})" for s in matrix.suites)
        raise ResolveError(
            f"{spec.source}: python: no Debian suite provides Python {python} (suites: {have})",
            fix=f'use one of those Pythons, or base = "python:{python}-slim" from a registry',
        )
    decisions.append(Decision(key="base", value=f"debian:{found.name}",
                              reason=f"the Debian suite whose python3 is {python}"))
    return f"debian:{found.name}", found.name, found.glibc


def _wheel_platform(glibc: str | None, release: Release | None,
                    decisions: list[Decision]) -> str:
    if glibc is None:
        # A registry base's glibc is unknown before its config is read; manylinux_2_28 is
        # what every maintained slim Python image (Debian 10+) satisfies.
        tag = "manylinux_2_28_x86_64"
        reason = "glibc of a registry base is not known; assumed >= 2.28"
    else:
        minor = min(int(glibc.split(".")[1]), _UV_MAX_GLIBC_MINOR)
        tag = f"manylinux_2_{minor}_x86_64"
        reason = f"glibc {glibc} of the base"
    if release is not None:
        need = _MANYLINUX_GLIBC.get(release.manylinux, release.manylinux.removeprefix("manylinux_")
                                    .replace("_", "."))
        reason += f"; {release.framework} {release.line} wheels need glibc >= {need}"
    decisions.append(Decision(key="platform", value=f"linux/amd64, {tag}", reason=reason))
    return tag


def _framework_requirement(spec: Spec, release: Release, option: CudaOption | None,
                           decisions: list[Decision]) -> str:
    assert spec.framework is not None
    extra = f"[{option.extra}]" if option and option.extra else ""
    parts = [f"=={release.line}.*"]
    user = [str(s) for s in spec.framework.specifier_set()]
    if option is not None and option.source == "wheels":
        for bad, good in release.cuda_replace:
            why = (f"{release.distribution}{extra}=={bad} cannot be resolved from PyPI (it pins "
                   f"tensorrt-libs, which PyPI does not carry); {good} is the same release "
                   "with that pin dropped")
            if f"=={bad}" in user:  # the user's exact pin: the release that works
                user = [f"=={good}" if s == f"=={bad}" else s for s in user]
                decisions.append(Decision(key="replace", value=f"{bad} -> {good}", reason=why))
            else:
                parts.append(f"!={bad}")
                decisions.append(Decision(key="exclude", value=f"{release.distribution}=={bad}",
                                          reason=why))
    parts += user
    requirement = f"{release.distribution}{extra}{SpecifierSet(','.join(parts))}"
    decisions.append(Decision(key="requirement", value=requirement,
                              reason="framework requirement handed to the resolver"))
    return requirement


def _pytorch_index(spec: Spec, variant: str) -> str:
    if not spec.index.pytorch_url:
        raise ResolveError(
            f"{spec.source}: accelerator: this CUDA version is PyTorch's {variant} build, which "
            "PyPI does not carry",
            fix="set index.pytorch_url to PyTorch's wheel index (the URL that ends in /whl), "
                "or use the CUDA of PyPI's torch wheel (dlenv matrix pytorch)",
        )
    return f"{spec.index.pytorch_url}/{variant}"


def _cuda_reason(release: Release, option: CudaOption) -> str:
    if option.source == "wheels":
        how = f"nvidia-* wheels through {release.distribution}"
        how += f"[{option.extra}]" if option.extra else " from PyPI"
    elif option.source == "cu11-wheels":
        how = ("NVIDIA's CUDA 11 wheels, whose newer CUDA 11 and cuDNN 8 minors TensorFlow "
               "accepts, linked where the dynamic loader looks")
    elif option.source == "variant-index":
        how = f"the +{option.variant} build from PyTorch's wheel index"
    else:
        how = "the CUDA base image"
    return f"{release.framework} {release.line} is built for CUDA {option.cuda}; from {how}"
