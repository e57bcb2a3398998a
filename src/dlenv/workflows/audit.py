"""``sbom``: what an image of the project holds, from its lock and its wheels' metadata, with
the image built (natively, not loaded) so that its digest is the document's subject;
``export``: the lock's Python packages for pip, PEP 751 tools or conda."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dlenv.audit.export import Export, conda_environment, pylock, requirements_txt
from dlenv.audit.sbom import (
    Component,
    Format,
    Subject,
    base_of,
    cyclonedx_json,
    inventory,
    read_wheel,
    spdx_json,
)
from dlenv.cache import LazyClient
from dlenv.errors import UsageError
from dlenv.fsutil import write_atomic
from dlenv.workflows.build import build, native_builder
from dlenv.workflows.cluster import yaml_text
from dlenv.workflows.inputs import BuildOptions
from dlenv.workflows.project import Project, fresh_lock
from dlenv.workflows.report import Reporter, Silent


@dataclass(frozen=True, slots=True, kw_only=True)
class SbomOptions:
    profile: str | None = None
    format: Format = "cyclonedx"
    output: str | None = None  # a file; None: the caller prints the text
    frozen: bool = False
    cache_dir: str | None = None


@dataclass(frozen=True, slots=True)
class Sbom:
    text: str
    subject: Subject
    components: tuple[Component, ...]
    written: Path | None


def sbom(project: Project, options: SbomOptions, reporter: Reporter | None = None) -> Sbom:
    report = reporter or Silent()
    lock = fresh_lock(project, cache_dir=options.cache_dir, frozen=options.frozen,
                      reporter=report)
    built = build(project, BuildOptions(profile=options.profile, frozen=True,
                                        cache_dir=options.cache_dir), report)
    report.step("reading the wheels' metadata")
    builder = native_builder(project.spec, options.cache_dir, report)
    with LazyClient(builder.ca_bundle) as client:  # the build left them in the cache
        wheels = {w.sha256: read_wheel(builder.wheel_file(client, w))
                  for w in lock.wheels_for(options.profile)}
    components = inventory(lock, options.profile, wheels)
    subject = Subject(name=project.spec.name, tag=built.alias or built.tag,
                      digest=built.result.manifest.digest, base=base_of(lock),
                      created=lock.source_date_epoch)
    report.step(f"writing the {options.format} document ({len(components)} components)")
    text = (cyclonedx_json if options.format == "cyclonedx" else spdx_json)(subject, components)
    written = None
    if options.output:
        written = Path(options.output)
        write_atomic(written, text.encode())
    return Sbom(text, subject, components, written)


@dataclass(frozen=True, slots=True)
class FetchedSbom:
    text: str
    image: str  # the image's digest, which the SBOM's artifact refers to
    artifact: str  # the artifact's manifest digest
    written: Path | None


def fetch_sbom(ref: str, fmt: Format = "cyclonedx", *, output: str | None = None,
               reporter: Reporter | None = None) -> FetchedSbom:
    """The SBOM pushed with an image (``dlenv push --sbom``), read back from the registry:
    the image's digest resolved from ``ref``, its referrers of the format's artifact type
    listed (the referrers API, else the referrers tag), the newest fetched, digests checked."""
    from dlenv.oci.referrers import ARTIFACT_TYPES, fetch, referrers
    from dlenv.oci.registry import Reference, RegistryClient

    report = reporter or Silent()
    target = Reference.parse(ref)
    client = RegistryClient()
    try:
        report.step(f"resolving {target}")
        image = client.resolve_digest(target)
        found = referrers(client, target, image, ARTIFACT_TYPES[fmt])
        if not found:
            raise UsageError(f"{ref} ({image}) has no {fmt} SBOM in its registry",
                             fix="push it with 'dlenv push --sbom', or ask for the other "
                                 "--format")
        newest = max(found, key=lambda m: str((m.get("annotations") or {}).get(
            "org.opencontainers.image.created", "")))
        report.step(f"fetching {newest['digest']}")
        data = fetch(client, target, image, newest)
    finally:
        client.close()
    written = None
    if output:
        written = Path(output)
        write_atomic(written, data)
    return FetchedSbom(data.decode(), image, newest["digest"], written)


def export(project: Project, fmt: Export, *, profile: str | None = None,
           output: str | None = None, frozen: bool = False, cache_dir: str | None = None,
           reporter: Reporter | None = None) -> tuple[str, Path | None]:
    """The lock's Python packages as ``fmt``; written to ``output`` when given."""
    import tomli_w

    if profile is not None and project.spec.profile(profile) is None:
        raise UsageError(f"{project.file}: no profile {profile!r}",
                         fix="pick one of the spec's profiles")
    lock = fresh_lock(project, cache_dir=cache_dir, frozen=frozen, reporter=reporter)
    if fmt == "requirements":
        text = requirements_txt(lock, profile, project.spec.name)
    elif fmt == "pylock":
        text = tomli_w.dumps(pylock(lock, profile))
    else:
        text = yaml_text(conda_environment(lock, profile, project.spec.name))
    if output is None:
        return text, None
    write_atomic(Path(output), text.encode())
    return text, Path(output)
