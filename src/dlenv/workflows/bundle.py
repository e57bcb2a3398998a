"""``bundle``: environments for a machine with no network, in one file.

A bundle is a tar (its members are compressed already): ``bundle.json`` first, listing every
other member with its sha256 and size, then each project's spec and lock, every wheel and
.deb the locks pin (``files/<sha256>``), and the blobs of each project's image and of a
registry base (``blobs/sha256/<hex>``). ``import`` reads it as a stream, checks each member
against the listing before it goes into the cache or the store, and names the first member
that is missing, extra, or not what the listing says; tags are written only when every
member checked out. A build after the import reads only the cache: no network, and the
image digest of the machine that made the bundle.

Hand-written on ``tarfile`` because no maintained library packs content-addressed files
with per-member verification on a streaming read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlenv.cache import ContentCache, default_cache_dir
from dlenv.config import REPOSITORY
from dlenv.errors import IntegrityError, UsageError
from dlenv.fsutil import canonical_json, shorten, temp_prefix, write_atomic
from dlenv.image.builder import builder_for
from dlenv.oci import MT_MANIFEST, Descriptor
from dlenv.oci.layer import tar_stream
from dlenv.oci.store import OCIStore, default_store
from dlenv.workflows.build import ready_image
from dlenv.workflows.project import open_project
from dlenv.workflows.report import Reporter, Silent

BUNDLE_VERSION = 1
INDEX = "bundle.json"
_MEMBER = re.compile(r"files/[0-9a-f]{64}|blobs/sha256/[0-9a-f]{64}|"
                     r"projects/[a-z0-9][a-z0-9._-]{0,63}/dlenv\.(?:toml|lock)")
_TAG = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
                  r"|[a-z0-9.:-]+/[a-z0-9._/-]+(?::[A-Za-z0-9_.-]+)?@sha256:[0-9a-f]{64}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BundledImage:
    project: str  # the spec's name: projects/NAME/
    tag: str  # NAME:latest, as the store tags it after import
    manifest: str


@dataclass(frozen=True, slots=True)
class Bundle:
    path: Path
    images: tuple[BundledImage, ...]
    members: int
    size: int


def create_bundle(directories: list[Path], output: Path, *, cache_dir: str | None = None,
                  reporter: Reporter | None = None) -> Bundle:
    """Bundle each project's spec, lock, inputs and image (built first when needed)."""
    report = reporter or Silent()
    projects = [open_project(d) for d in directories]
    names = [p.spec.name for p in projects]
    if len(set(names)) != len(names):
        raise UsageError(f"two projects are named {shorten(names)}",
                         fix="bundle projects whose specs have different names")
    store = default_store(cache_dir)
    members: dict[str, Path | bytes] = {}
    images = []
    for project in projects:
        ready = ready_image(project, cache_dir=cache_dir, reporter=report, packed=True)
        report.step(f"gathering what {project.spec.name} is built from")
        builder = builder_for(project.spec, cache_dir, report.progress)
        for sha, path in builder.inputs(ready.lock).items():
            members[f"files/{sha}"] = path
        digests = store.verified_blobs(ready.manifest)
        base_ref = ready.lock.base.ref if ready.lock.base.kind == "image" else None
        if base_ref and ready.lock.base.digest:  # the base too: a build pulls it by digest
            base = store.resolve(f"{base_ref}@{ready.lock.base.digest}")
            if base is not None:
                digests += store.verified_blobs(base)
                images.append(BundledImage(project.spec.name,
                                           f"{base_ref}@{ready.lock.base.digest}",
                                           base.digest))
        for digest in digests:
            members[f"blobs/sha256/{digest.split(':', 1)[1]}"] = store.blob_path(digest)
        for name in ("dlenv.toml", "dlenv.lock"):
            source = project.file if name == "dlenv.toml" else project.lock_path
            members[f"projects/{project.spec.name}/{name}"] = source.read_bytes()
        images.append(BundledImage(project.spec.name, f"{project.spec.name}:latest",
                                   ready.manifest.digest))
    listing = {name: _describe(data) for name, data in sorted(members.items())}
    index = canonical_json({"version": BUNDLE_VERSION, "members": listing, "images": [
        {"project": i.project, "tag": i.tag, "manifest": i.manifest} for i in images]})
    report.step(f"writing {output}")
    tmp = output.with_name(temp_prefix("bundle") + output.name)
    try:
        with tmp.open("wb") as raw:
            with tar_stream(raw) as tar:
                _add(tar, INDEX, index)
                for name, data in sorted(members.items()):
                    _add(tar, name, data)
            raw.flush()
            os.fsync(raw.fileno())
        tmp.replace(output)  # a killed run leaves no half bundle under the name
    finally:
        tmp.unlink(missing_ok=True)
    return Bundle(output, tuple(images), len(members) + 1, output.stat().st_size)


def _describe(data: Path | bytes) -> dict[str, Any]:
    if isinstance(data, bytes):
        return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    h = hashlib.sha256()
    with data.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return {"sha256": h.hexdigest(), "size": data.stat().st_size}


def _add(tar: tarfile.TarFile, name: str, data: Path | bytes) -> None:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime = 0o644, 0
    if isinstance(data, bytes):
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        return
    info.size = data.stat().st_size
    with data.open("rb") as f:
        tar.addfile(info, f)


@dataclass(frozen=True, slots=True)
class Imported:
    images: tuple[BundledImage, ...]
    members: int
    projects: tuple[Path, ...]  # where specs and locks were written (--projects)


def _listing(raw: bytes) -> tuple[dict[str, tuple[str, int]], list[BundledImage]]:
    """The bundle's own index, checked like any input from elsewhere."""
    try:
        doc = json.loads(raw)
        if doc.get("version") != BUNDLE_VERSION:
            raise ValueError(f"bundle version {shorten(doc.get('version'))}")
        listing = {}
        for name, entry in doc["members"].items():
            if not _MEMBER.fullmatch(name) or not re.fullmatch(r"[0-9a-f]{64}",
                                                                entry["sha256"]) \
                    or not isinstance(entry["size"], int) or entry["size"] < 0:
                raise ValueError(f"member {shorten(name)}")
            if name.startswith(("files/", "blobs/")) and name.rsplit("/", 1)[1] != \
                    entry["sha256"]:
                raise ValueError(f"member {name} is not named by its hash")
            listing[name] = (entry["sha256"], entry["size"])
        images = []
        for i in doc["images"]:
            if not (REPOSITORY.fullmatch(i["project"]) and _TAG.fullmatch(i["tag"])
                    and _DIGEST.fullmatch(i["manifest"])):
                raise ValueError(f"image {shorten(i)}")
            images.append(BundledImage(i["project"], i["tag"], i["manifest"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"{INDEX} of the bundle is malformed ({exc})",
                             fix="make the bundle again with 'dlenv bundle create'") from None
    return listing, images


def import_bundle(path: Path, *, cache_dir: str | None = None,
                  projects_dir: Path | None = None,
                  reporter: Reporter | None = None) -> Imported:
    """Load a bundle into the cache and store (and its specs and locks into
    ``projects_dir/NAME/``), each member checked against the bundle's index."""
    report = reporter or Silent()
    root = default_cache_dir(cache_dir)
    cache, store = ContentCache(root / "blobs"), default_store(cache_dir)
    texts: dict[str, bytes] = {}
    seen: set[str] = set()
    report.step(f"importing {path}")
    try:
        with tarfile.open(path, mode="r|") as tar:
            first = tar.next()
            if first is None or first.name != INDEX or not first.isfile() \
                    or first.size > 16 << 20:
                raise IntegrityError(f"{path} does not start with {INDEX}: not a dlenv "
                                     "bundle", fix="name a file 'dlenv bundle create' wrote")
            listing, images = _listing(_read(tar, first))
            while (member := tar.next()) is not None:
                expected = listing.get(member.name)
                if expected is None or member.name in seen or not member.isfile():
                    raise IntegrityError(f"{path}: member {shorten(member.name)} is not a "
                                         "file the bundle's index lists (or comes twice)",
                                         fix=_REMAKE)
                seen.add(member.name)
                sha, size = expected
                if member.size != size:
                    raise IntegrityError(f"{path}: member {member.name} has {member.size} "
                                         f"bytes, the index says {size}", fix=_REMAKE)
                _take(tar, member, sha, cache, store, texts, path)
    except (tarfile.ReadError, EOFError) as exc:
        raise IntegrityError(f"{path} is truncated or damaged after member "
                             f"{shorten(sorted(seen)[-1] if seen else INDEX)} ({exc})",
                             fix=_REMAKE) from None
    missing = sorted(set(listing) - seen)
    if missing:
        raise IntegrityError(f"{path} is truncated: member {missing[0]} (and "
                             f"{len(missing) - 1} more) never came", fix=_REMAKE)
    for image in images:
        data = store.blob_path(image.manifest).read_bytes()
        media = json.loads(data).get("mediaType") or MT_MANIFEST
        store.tag(image.tag, Descriptor(media_type=media, digest=image.manifest,
                                        size=len(data)))
    written: dict[Path, None] = {}
    if projects_dir is not None:
        for name, data in sorted(texts.items()):
            target = projects_dir / name.removeprefix("projects/")  # checked: NAME/dlenv.*
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, data)
            written[target.parent] = None
    return Imported(tuple(images), len(seen) + 1, tuple(written))


_REMAKE = "copy the bundle again, or make it again with 'dlenv bundle create'"


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(member)
    assert f is not None
    return f.read()


def _take(tar: tarfile.TarFile, member: tarfile.TarInfo, sha: str, cache: ContentCache,
          store: OCIStore, texts: dict[str, bytes], path: Path) -> None:
    """One member: hashed while it is written to a temporary name, kept only if it is what
    the index says."""
    source = tar.extractfile(member)
    assert source is not None
    if member.name.startswith("projects/"):
        data = source.read()
        if hashlib.sha256(data).hexdigest() != sha:
            raise IntegrityError(f"{path}: member {member.name} is not what the index says",
                                 fix=_REMAKE)
        texts[member.name] = data
        return
    if member.name.startswith("files/"):
        if cache.verified(sha) is None:
            cache.put(source, sha, what=f"{path}: member {member.name}")
        return
    digest = f"sha256:{sha}"
    if store.has(digest) and store.verify_blob(digest):
        return
    with store.writer() as out:
        h = hashlib.sha256()
        while chunk := source.read(CHUNK):
            h.update(chunk)
            out.write(chunk)
        if h.hexdigest() != sha:
            raise IntegrityError(f"{path}: member {member.name} is not what the index says",
                                 fix=_REMAKE)
        store.commit(out, digest)


def push_bundle(path: Path, destination: str, *, cache_dir: str | None = None,
                reporter: Reporter | None = None) -> list[tuple[str, str, int]]:
    """Import a bundle, then push its images under ``destination`` (REGISTRY[/PREFIX]) to
    seed an internal registry: (reference, digest, blobs sent) for each."""
    from dlenv.oci.registry import Reference, RegistryClient

    report = reporter or Silent()
    destination = destination.rstrip("/")
    Reference.parse(f"{destination}/x:1")  # a bad destination fails before any work
    imported = import_bundle(path, cache_dir=cache_dir, reporter=report)
    store = default_store(cache_dir)
    client = RegistryClient()
    pushed = []
    try:
        for image in imported.images:
            if "@" in image.tag:  # a registry base, by digest, under its own path
                base = Reference.parse(image.tag)
                ref = Reference.parse(f"{destination}/{base.repository}@{base.digest}")
            else:  # a project's image: NAME:latest
                ref = Reference.parse(f"{destination}/{image.tag}")
            manifest = store.resolve(image.tag)
            assert manifest is not None  # tagged by the import
            report.step(f"pushing {ref}")
            digest, sent = client.push(store, manifest, ref)
            pushed.append((str(ref), digest, sent))
    finally:
        client.close()
    return pushed
