"""``push`` and ``pull``: images between the local store and a registry. A push sends only
what ``build`` made from the project's current spec and lock."""

from __future__ import annotations

from dataclasses import dataclass

from dlenv.engine import detect
from dlenv.errors import UsageError
from dlenv.image import default_store, lock_digest, plan_build
from dlenv.oci.registry import Reference, RegistryClient
from dlenv.workflows.build import load_image
from dlenv.workflows.project import Project, check_lock_file
from dlenv.workflows.report import Reporter, Silent


@dataclass(frozen=True, slots=True)
class Pushed:
    ref: Reference
    digest: str
    blobs_sent: int
    image: str  # the store's tag that was pushed
    layers: int


@dataclass(frozen=True, slots=True)
class Pulled:
    ref: Reference
    digest: str
    loaded: bool


def push(project: Project, ref: str, *, profile: str | None = None,
         cache_dir: str | None = None, reporter: Reporter | None = None) -> Pushed:
    """Push the profile's built image as ``ref``, after checking it was built from the
    project's spec and lock as they are now."""
    spec = project.spec
    lock = check_lock_file(project)
    plan = plan_build(spec, lock, profile=profile)
    store = default_store(cache_dir)
    manifest = store.resolve(plan.tag)
    if manifest is None:
        raise UsageError(f"{plan.tag} is not built",
                         fix=f"run 'dlenv build {project.directory}' first")
    target = Reference.parse(ref)
    doc = store.read_json(manifest.digest)
    labels = store.read_json(doc["config"]["digest"]).get("config", {}).get("Labels") or {}
    for key, want in (("dev.dlenv.lock.digest", lock_digest(lock)),
                      ("dev.dlenv.spec.digest", spec.digest())):
        if labels.get(key) != want:
            raise UsageError(f"{plan.tag} in the store was built from another "
                             f"{'lock' if 'lock' in key else 'spec'} than the project's now",
                             fix=f"run 'dlenv build {project.directory}' first, then push")
    client = RegistryClient()
    try:
        (reporter or Silent()).step(f"pushing {plan.tag} to {target}")
        digest, sent = client.push(store, manifest, target)
    finally:
        client.close()
    return Pushed(ref=target, digest=digest, blobs_sent=sent, image=plan.tag,
                  layers=len(doc["layers"]))


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
        load_image(detect("docker"), store, desc, tag or ref.split("@")[0])
    return Pulled(ref=source, digest=desc.digest, loaded=load)
