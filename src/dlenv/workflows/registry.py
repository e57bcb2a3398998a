"""``push`` and ``pull``: images between the local store and a registry. A push sends only
what ``build`` made from the project's current spec and lock."""

from __future__ import annotations

from dataclasses import dataclass

from dlenv.config import TEAM_FILE
from dlenv.engine import detect
from dlenv.errors import UsageError
from dlenv.image import default_store
from dlenv.oci.registry import Reference, RegistryClient
from dlenv.workflows.build import load_image, ready_image
from dlenv.workflows.project import Project
from dlenv.workflows.report import Reporter, Silent


@dataclass(frozen=True, slots=True)
class Pushed:
    ref: Reference
    digest: str
    blobs_sent: int
    image: str  # the store's tag that was pushed
    layers: int
    built: bool  # it was built (or rebuilt) first


@dataclass(frozen=True, slots=True)
class Pulled:
    ref: Reference
    digest: str
    loaded: bool


def push_target(project: Project, ref: str | None, profile: str | None) -> Reference:
    """``ref``, else NAME:PROFILE under the team configuration's ``registry.push``."""
    if ref is None:
        prefix = project.config["registry.push"]
        if prefix is None:
            raise UsageError("dlenv push needs a REF (registry/repository:tag)",
                             fix="name one, or set registry.push in the team configuration "
                                 f"({TEAM_FILE}) or DLENV_PUSH_TO")
        ref = f"{prefix}/{project.spec.name}:{profile or 'latest'}"
    return Reference.parse(ref)


def push(project: Project, ref: str | None, *, profile: str | None = None,
         frozen: bool = False, cache_dir: str | None = None,
         reporter: Reporter | None = None) -> Pushed:
    """Push the profile's image as ``ref`` (None: where the team configuration says): what
    ``dlenv build`` made when it was built from the project's spec and lock as they are now,
    else built first (locking when needed)."""
    report = reporter or Silent()
    target = push_target(project, ref, profile)  # a bad reference fails before any work
    ready = ready_image(project, profile=profile, frozen=frozen, cache_dir=cache_dir,
                        reporter=report)
    store = default_store(cache_dir)
    client = RegistryClient()
    try:
        report.step(f"pushing {ready.tag} to {target}")
        digest, sent = client.push(store, ready.manifest, target)
    finally:
        client.close()
    return Pushed(ref=target, digest=digest, blobs_sent=sent, image=ready.tag,
                  layers=len(store.read_json(ready.manifest.digest)["layers"]),
                  built=ready.built)


def pull(ref: str, *, load: bool = False, tag: str | None = None,
         cache_dir: str | None = None, reporter: Reporter | None = None) -> Pulled:
    """Pull ``ref`` (tag or digest) into the store; with ``load``, into Docker too."""
    report = reporter or Silent()
    source = Reference.parse(ref)
    store = default_store(cache_dir)
    client = RegistryClient()
    try:
        report.step(f"pulling {source}")
        desc = client.pull(source, store, tag=ref)
    finally:
        client.close()
    if load:
        report.step("loading into Docker")
        load_image(detect("docker"), store, desc, (tag or ref.split("@")[0],))
    return Pulled(ref=source, digest=desc.digest, loaded=load)
