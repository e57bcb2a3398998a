"""``push`` and ``pull``: images between the local store and a registry. A push sends only
what ``build`` made from the project's current spec and lock."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlenv.cache import default_cache_dir
from dlenv.config import HOST, REPOSITORY, TEAM_FILE
from dlenv.engine import detect
from dlenv.errors import IntegrityError, UsageError
from dlenv.fsutil import canonical_json, location_id, write_atomic
from dlenv.image import lock_digest
from dlenv.oci.registry import Reference, RegistryClient
from dlenv.oci.store import default_store
from dlenv.workflows.build import load_image, ready_image
from dlenv.workflows.project import Project
from dlenv.workflows.report import Reporter, Silent

if TYPE_CHECKING:  # the SBOM's modules load only for 'push --sbom' (start-up stays short)
    from dlenv.audit.sbom import Format


@dataclass(frozen=True, slots=True)
class Pushed:
    ref: Reference
    digest: str
    blobs_sent: int
    image: str  # the store's tag that was pushed
    layers: int
    built: bool  # it was built (or rebuilt) first
    sbom: str | None = None  # the digest of the SBOM artifact that refers to it


@dataclass(frozen=True, slots=True)
class Pulled:
    ref: Reference
    digest: str
    loaded: bool


def _record(path: Path) -> dict[str, Any]:
    """A small JSON record of the cache: a missing or damaged one reads as empty."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class PushedRepositories:
    """The repositories this machine pushed to, per registry, newest first: where a push
    asks the registry to mount blobs from (a second environment that shares the framework's
    layers then sends none of their bytes)."""

    KEEP = 4  # a mount attempt is one request per missing blob and repository

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, list[str]]:
        return {k: [r for r in v if isinstance(r, str) and REPOSITORY.fullmatch(r)]
                for k, v in _record(self.path).items() if isinstance(v, list)}

    def get(self, registry: str) -> tuple[str, ...]:
        return tuple(self._read().get(registry, ())[:self.KEEP])

    def add(self, registry: str, repository: str) -> None:
        data = self._read()
        data[registry] = [repository, *(r for r in data.get(registry, []) if r != repository)
                          ][:self.KEEP]
        write_atomic(self.path, canonical_json(data))


class LastPush:
    """The image each profile of each project directory was last pushed as (by digest), and
    from which lock: where ``dlenv k8s`` finds the image its manifests name."""

    def __init__(self, cache_dir: str | None = None) -> None:
        self.path = default_cache_dir(cache_dir) / "last-push.json"

    @staticmethod
    def key(project: Project, profile: str | None) -> str:
        return f"{location_id(str(project.directory.resolve()))}:{profile or ''}"

    def _read(self) -> dict[str, dict[str, str]]:
        return {k: v for k, v in _record(self.path).items() if isinstance(v, dict)}

    def find(self, project: Project, profile: str | None) -> tuple[str, str] | None:
        """(REPOSITORY@sha256:…, the lock's digest) of the last push, if any."""
        entry = self._read().get(self.key(project, profile), {})
        image, lock = entry.get("image"), entry.get("lock")
        return (image, lock) if isinstance(image, str) and isinstance(lock, str) else None

    def record(self, project: Project, profile: str | None, image: str, lock: str) -> None:
        data = self._read()
        data[self.key(project, profile)] = {"image": image, "lock": lock}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, canonical_json(data))


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
         frozen: bool = False, cache_dir: str | None = None, sbom: Format | None = None,
         reporter: Reporter | None = None) -> Pushed:
    """Push the profile's image as ``ref`` (None: where the team configuration says): what
    ``dlenv build`` made when it was built from the project's spec and lock as they are now,
    else built first (locking when needed). With ``sbom``, its SBOM in that format goes
    with it, as an artifact that refers to the image (``dlenv sbom REF`` reads it back)."""
    report = reporter or Silent()
    target = push_target(project, ref, profile)  # a bad reference fails before any work
    ready = ready_image(project, profile=profile, frozen=frozen, cache_dir=cache_dir,
                        reporter=report, packed=True)
    document = None
    if sbom is not None:
        from dlenv.workflows.audit import SbomOptions
        from dlenv.workflows.audit import sbom as make_sbom

        document = make_sbom(project, SbomOptions(profile=profile, format=sbom, frozen=True,
                                                  cache_dir=cache_dir), report)
        if document.subject.digest != ready.manifest.digest:  # the same lock, the same image
            raise IntegrityError(f"the SBOM describes {document.subject.digest}, not the "
                                 f"image pushed ({ready.manifest.digest})", fix="build again")
    store = default_store(cache_dir)
    client = RegistryClient()
    pushed_to = PushedRepositories(default_cache_dir(cache_dir) / "pushed.json")
    attached = None
    try:
        report.step(f"pushing {ready.tag} to {target}")
        digest, sent = client.push(store, ready.manifest, target,
                                   mount_from=pushed_to.get(target.registry))
        if document is not None and sbom is not None:
            from dlenv.oci.image import rfc3339
            from dlenv.oci.referrers import ARTIFACT_TYPES, attach

            report.step(f"attaching its {sbom} SBOM")
            attached = attach(client, store, target, ready.manifest, ARTIFACT_TYPES[sbom],
                              document.text.encode(), {
                                  "org.opencontainers.image.created":
                                      rfc3339(ready.lock.source_date_epoch),
                                  "dev.dlenv.sbom.format": sbom})
    finally:
        client.close()
    pushed_to.add(target.registry, target.repository)
    LastPush(cache_dir).record(project, profile, f"{target.registry}/{target.repository}"
                               f"@{digest}", lock_digest(ready.lock))
    return Pushed(ref=target, digest=digest, blobs_sent=sent, image=ready.tag,
                  layers=len(store.read_json(ready.manifest.digest)["layers"]),
                  built=ready.built, sbom=attached)


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


@dataclass(frozen=True, slots=True)
class Copied:
    source: str
    target: str
    digest: str
    blobs_sent: int
    skipped: bool  # the target already named this digest: nothing was sent


def copy(source: str, target: str, *, cache_dir: str | None = None,
         reporter: Reporter | None = None) -> Copied:
    """Copy ``source`` to ``target`` (another repository or registry) keeping its digest;
    only the blobs the target lacks travel, and nothing when it has the image already."""
    return copy_many([(source, target)], cache_dir=cache_dir, reporter=reporter)[0]


def copy_many(pairs: list[tuple[str, str]], *, cache_dir: str | None = None,
              reporter: Reporter | None = None) -> list[Copied]:
    report = reporter or Silent()
    refs = [(Reference.parse(s), Reference.parse(t)) for s, t in pairs]  # all checked first
    store = default_store(cache_dir)
    client = RegistryClient()
    pushed_to = PushedRepositories(default_cache_dir(cache_dir) / "pushed.json")
    done = []
    try:
        for source, target in refs:
            found = client.manifest(source)
            if client.manifest_digest(target) == found[2]:
                done.append(Copied(str(source), str(target), found[2], 0, skipped=True))
                continue
            report.step(f"copying {source} to {target}")
            digest, sent = client.copy(source, target, store, manifest=found,
                                       mount_from=pushed_to.get(target.registry))
            pushed_to.add(target.registry, target.repository)
            done.append(Copied(str(source), str(target), digest, sent, skipped=False))
    finally:
        client.close()
    return done


def mirror(repositories: list[str], destination: str, *, tags: str = "*",
           cache_dir: str | None = None, reporter: Reporter | None = None) -> list[Copied]:
    """Copy every tag matching ``tags`` (a glob) of each source repository to
    ``destination`` (REGISTRY[/PREFIX]) under the same repository path; tags the
    destination has at the same digest are skipped, so a second run sends nothing and an
    interrupted one goes on where it stopped."""
    report = reporter or Silent()
    registry, _, prefix = destination.rstrip("/").partition("/")
    if not HOST.fullmatch(registry) or (prefix and not REPOSITORY.fullmatch(prefix)):
        raise UsageError(f"{destination!r} is not REGISTRY[/PREFIX]",
                         fix="write a registry host[:port], optionally with a path prefix")
    pairs = []
    client = RegistryClient()
    try:
        for repo in repositories:
            source = Reference.parse(repo)
            named = "@" in repo or ":" in repo.rsplit("/", 1)[-1]  # one image, in full
            if named:
                names = [source.reference]
            else:
                report.step(f"listing the tags of {source.registry}/{source.repository}")
                names = [t for t in client.tags(source) if fnmatch.fnmatchcase(t, tags)]
            where = f"{registry}/{prefix}/{source.repository}" if prefix \
                else f"{registry}/{source.repository}"
            for name in names:
                at = "@" if name.startswith("sha256:") else ":"
                pairs.append((f"{source.registry}/{source.repository}{at}{name}",
                              f"{where}{at}{name}"))
    finally:
        client.close()
    return copy_many(pairs, cache_dir=cache_dir, reporter=report)
