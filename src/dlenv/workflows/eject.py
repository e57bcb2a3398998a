"""``dockerfile`` (eject): the lock rendered as a multi-stage Dockerfile with its context, and
the same Dockerfile built by an engine and checked to hold exactly the locked packages."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from dlenv.cache import host_bundle
from dlenv.engine import CONFINED, Engine, detect
from dlenv.errors import (
    BuildError,
    EngineError,
    FetchError,
    IntegrityError,
    RegistryError,
    UsageError,
)
from dlenv.fsutil import shorten
from dlenv.image import lock_digest, plan_build
from dlenv.image.builder import builder_for
from dlenv.image.dockerfile import CA_SECRET, Mode, Rendered, render_dockerfile
from dlenv.image.eject import compare_with_lock, write_context
from dlenv.image.portable import PortableBase, portable_suite
from dlenv.image.project import user_ignores
from dlenv.lock import Lock
from dlenv.spec import IMAGE_RE
from dlenv.workflows.project import Project, fresh_lock, project_files
from dlenv.workflows.report import Reporter, Silent


@dataclass(frozen=True, slots=True)
class Ejected:
    rendered: Rendered
    dockerfile: Path
    written: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class DockerBuilt:
    tag: str
    image: str  # the engine's image id
    target: str  # the Dockerfile stage built
    dockerfile: Path
    packages: int  # locked packages the image was checked to hold
    seconds: float


def installed_packages(engine: Engine, image: str) -> dict[str, str]:
    """What ``pip list`` shows inside ``image`` (canonical name → version)."""
    code, out, err = engine.run_captured(
        ["--rm", *CONFINED, "--entrypoint", "python3", image, "-m", "pip", "list", "--format",
         "json", "--disable-pip-version-check"], timeout=300)
    if code != 0:
        raise EngineError(f"cannot list the packages in {image}: {err.strip()[-600:]}")
    return {str(canonicalize_name(p["name"])): p["version"] for p in json.loads(out)}


def portable_base(project: Project, lock: Lock, base: str | None = None,
                  cache_dir: str | None = None) -> PortableBase:
    """The registry base of a portable Dockerfile, pinned by digest (``base``, default the
    slim image of the lock's Debian suite; its digest asked of the registry unless given),
    and the version of Debian's pip in the suite."""
    from dlenv.oci.registry import Reference, RegistryClient  # httpx: only when asked
    from dlenv.resolve.debian import suite_version

    suite = portable_suite(project.spec, lock)
    name = base or f"debian:{suite}-slim"
    if not IMAGE_RE.fullmatch(name):
        raise UsageError(f"--base {shorten(name)} is not an image reference",
                         fix="write REGISTRY/NAME:TAG or NAME:TAG@sha256:DIGEST, lowercase")
    ref = Reference.parse(name)
    if ref.digest is None:
        client = RegistryClient()
        try:
            digest = client.resolve_digest(ref)
        except (RegistryError, IntegrityError, FetchError) as exc:
            raise BuildError(f"cannot pin {name} by digest: {exc.message}",
                             fix="pass --base REF@sha256:DIGEST (a registry or mirror you "
                                 "reach), or --mode exact") from exc
        finally:
            client.close()
        name = f"{name}@{digest}"
    return PortableBase(image=name, pip=suite_version(
        suite, "python3-pip", ca_bundle=project.spec.index.ca_bundle, cache_dir=cache_dir))


def render(project: Project, lock: Lock, reporter: Reporter | None = None,
           portable: PortableBase | None = None) -> Rendered:
    """The Dockerfile text and what its context needs (nothing written)."""
    return render_dockerfile(project.spec, lock, lock_digest(lock),
                             project_files(project, reporter), user_ignores(project.directory),
                             portable=portable)


def eject(project: Project, lock: Lock, *, output: Path | None = None,
          mode: Mode = "portable",
          base: str | None = None, cache_dir: str | None = None,
          reporter: Reporter | None = None) -> Ejected:
    """Write the Dockerfile (default: beside the spec) and its context: portable (a registry
    base and requirement files a clone keeps) or exact (the native base in ``.dlenv/``)."""
    report = reporter or Silent()
    portable = None
    if mode == "portable":
        report.step("pinning the base image by digest")
        portable = portable_base(project, lock, base, cache_dir)
    rendered = render(project, lock, report, portable)
    target = output or project.directory / "Dockerfile"
    builder = builder_for(project.spec, cache_dir, report.progress)
    report.step("writing the Dockerfile and its context")
    written = write_context(rendered, project.spec, lock, project.directory, target, builder)
    return Ejected(rendered, target, tuple(written))


def build_dockerfile(project: Project, *, profile: str | None = None, tag: str | None = None,
                     frozen: bool = False, cache_dir: str | None = None,
                     reporter: Reporter | None = None) -> DockerBuilt:
    """Eject, build the profile's stage with Docker (BuildKit), and check that the image
    holds exactly the locked packages."""
    report = reporter or Silent()
    started = time.monotonic()
    lock = fresh_lock(project, cache_dir=cache_dir, frozen=frozen, reporter=report)
    ejected = eject(project, lock, mode="exact", cache_dir=cache_dir, reporter=report)
    engine = detect("docker")
    stage = profile or "runtime"
    tag = tag or plan_build(project.spec, lock, profile=profile).tag
    bundle = host_bundle()
    report.step(f"docker build --target {stage} (BuildKit)")
    image = engine.build(project.directory, ejected.dockerfile, stage, tag,
                         {CA_SECRET: bundle} if bundle else {},
                         log=lambda line: report.step(line[-100:]))
    problems = compare_with_lock(installed_packages(engine, tag), lock, profile)
    if problems:
        raise BuildError(f"{tag} does not hold exactly the locked packages: "
                         + "; ".join(problems[:10]), fix="report this: the Dockerfile and the "
                         "lock disagree")
    return DockerBuilt(tag=tag, image=image, target=stage, dockerfile=ejected.dockerfile,
                       packages=len(lock.wheels_for(profile)),
                       seconds=time.monotonic() - started)
