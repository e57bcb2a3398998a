"""``build``: the project's image built natively into the store, then written out (OCI
layout, docker-archive) or loaded into an engine as the user asked."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from dlenv.engine import Engine, detect
from dlenv.image import BuildResult, builder_for, plan_build
from dlenv.oci import Descriptor
from dlenv.oci.export import export_oci, parse_output, save_docker_archive, write_docker_archive
from dlenv.oci.store import OCIStore
from dlenv.workflows.project import Project, fresh_lock, project_files
from dlenv.workflows.report import Reporter, Silent

Compression = Literal["gzip", "zstd", "none"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildOptions:
    profile: str | None = None
    compression: Compression = "gzip"
    bytecode: bool = True
    with_project: bool = True  # copy the spec's directory into the workdir
    tag: str | None = None  # default NAME:latest or NAME:PROFILE
    outputs: tuple[str, ...] = ()  # "oci:DIR" or "docker-archive:FILE"
    load: bool = False  # into Docker
    frozen: bool = False  # fail instead of re-locking
    cache_dir: str | None = None


@dataclass(frozen=True, slots=True)
class Built:
    result: BuildResult
    tag: str
    loaded: bool
    seconds: float


def load_image(engine: Engine, store: OCIStore, manifest: Descriptor, tag: str) -> None:
    """Stream the stored image into ``engine`` under ``tag`` (no temporary archive)."""
    engine.load(lambda f: write_docker_archive(store, manifest, f, tag))


def build(project: Project, options: BuildOptions, reporter: Reporter | None = None) -> Built:
    report = reporter or Silent()
    outputs = [parse_output(o) for o in options.outputs]  # bad values fail before any work
    lock = fresh_lock(project, cache_dir=options.cache_dir, frozen=options.frozen,
                      reporter=report)
    files = project_files(project, report) if options.with_project else ()
    plan = plan_build(project.spec, lock, profile=options.profile,
                      compression=options.compression, bytecode=options.bytecode,
                      project=files)
    started = time.monotonic()
    builder = builder_for(project.spec, options.cache_dir, report.progress)
    result = builder.build(plan)
    tag = options.tag or plan.tag
    for kind, where in outputs:
        report.step(f"writing {kind}:{where}")
        if kind == "oci":
            export_oci(builder.store, result.manifest, where, tag)
        else:
            save_docker_archive(builder.store, result.manifest, where, tag)
    if options.load:
        report.step(f"loading {tag} into Docker")
        load_image(detect("docker"), builder.store, result.manifest, tag)
    return Built(result=result, tag=tag, loaded=options.load,
                 seconds=time.monotonic() - started)

