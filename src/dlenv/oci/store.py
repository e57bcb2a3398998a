"""The local image store: an OCI image layout, safe against a build killed at any point.

Blobs are written under a temporary name, fsynced and renamed to their digest, so a blob
name always holds exactly that content. ``index.json`` is replaced atomically under a lock,
and only after every blob it names exists; garbage collection removes what no tag reaches.

A blob is not trusted for existing: each committed blob gets a stamp (size, inode, mtime and
the layer's diff_id) in ``.verified/``; reusing a blob in a build checks its size and stamp
(cheap), and anything that leaves the store (an output, a load, a push) is hashed in full
first. A blob that fails is removed, so the next build makes it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from dlenv.cache import default_cache_dir, sha256_file
from dlenv.errors import BuildError, IntegrityError
from dlenv.fsutil import canonical_json, ensure_dir, sweep, temp_prefix, write_atomic
from dlenv.oci import LAYER_MEDIA_TYPES, MT_INDEX, MT_LAYER_TAR, MT_MANIFEST, Descriptor, LayerBlob

REF_ANNOTATION = "org.opencontainers.image.ref.name"
PROJECT_ANNOTATION = "dev.dlenv.project"  # the directory of the project a tag was built for
PACK_ANNOTATION = "dev.dlenv.pack"  # the compression a tag's plain tar layers are due


DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def is_plain_tar(blob: LayerBlob) -> bool:
    """Whether the layer's blob is its tar, uncompressed (its digest is its diff id)."""
    return blob.descriptor.media_type == MT_LAYER_TAR and blob.descriptor.digest == blob.diff_id


class OCIStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.stamps = root / ".verified"
        ensure_dir(self.blobs, "the image store")
        ensure_dir(self.stamps, "the image store")
        self._hashed: set[str] = set()  # digests hashed in full by this process
        self.packs = root / ".packed"  # diff id -> the blob ``pack`` made of it
        layout = root / "oci-layout"
        if not layout.exists():
            write_atomic(layout, b'{"imageLayoutVersion":"1.0.0"}')
        if not (root / "index.json").exists():
            self._write_index([])

    # --- blobs --------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.split(":", 1)[1]

    def has(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def put_bytes(self, data: bytes, media_type: str) -> Descriptor:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.verify_blob(digest):
            write_atomic(self.blob_path(digest), data)
            self._stamp(digest)
        return Descriptor(media_type=media_type, digest=digest, size=len(data))

    @contextlib.contextmanager
    def writer(self) -> Iterator[IO[bytes]]:
        """A temporary blob file; ``commit`` it under its digest once its content is known."""
        fd, name = tempfile.mkstemp(dir=self.blobs, prefix=temp_prefix("blob"), suffix=".part")
        os.close(fd)
        f = open(name, "w+b")  # noqa: SIM115 - closed in the finally below
        try:
            yield f
        finally:
            f.close()
            Path(name).unlink(missing_ok=True)

    def commit(self, f: IO[bytes], digest: str, diff_id: str | None = None,
               diff_size: int = 0) -> None:
        """Give the written blob its name; ``digest`` was computed while it was written (and,
        for a layer, ``diff_id`` and ``diff_size`` of its uncompressed tar)."""
        f.flush()
        os.fsync(f.fileno())
        os.replace(f.name, self.blob_path(digest))
        self._stamp(digest, diff_id, diff_size)

    # --- layers kept uncompressed, packed when they leave the machine -------------------
    # A build whose image goes only to an engine here writes its new layers as plain tars
    # (their digest is their diff id) and the image is packed, each such layer compressed
    # from its tar, when it is pushed or written out. gzip is 14 CPU-seconds of the 5 GB of
    # examples/tensorflow-gpu, and a load would have inflated it again. The packed layers
    # are the bytes a build that compressed them at once gives (``compress_layer``).
    DEFER_RESERVE = 2 << 30  # disk left free: a tar never takes the room of what is built

    def room_for(self, size: int) -> bool:
        """Whether the disk keeps ``DEFER_RESERVE`` free after ``size`` more bytes."""
        return shutil.disk_usage(self.blobs).free >= size + self.DEFER_RESERVE

    def unpacked(self, diff_id: str, diff_size: int) -> Path | None:
        """The layer's tar as a blob of its own (a deferred build's), when it is intact by
        its stamp."""
        ok = diff_size and DIGEST.fullmatch(diff_id) and self.check(diff_id, diff_size)
        return self.blob_path(diff_id) if ok else None

    def packed_form(self, diff_id: str) -> Descriptor | None:
        """The compressed blob ``pack`` made of the layer ``diff_id``, when it is intact."""
        if not DIGEST.fullmatch(diff_id):  # a pulled image's config names its diff ids
            return None
        try:
            desc = Descriptor.from_json(json.loads((self.packs / diff_id[7:]).read_bytes()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        return desc if self.check(desc.digest, desc.size, diff_id) else None

    def pack(self, blob: LayerBlob, compression: str, *, make: bool = True) -> LayerBlob:
        """``blob`` compressed with ``compression`` (itself when it is already, or is not a
        plain tar): made once from its tar, whose hash is checked as it is read. Not
        ``make``: only the packed blob made before, else ``blob`` itself."""
        want = LAYER_MEDIA_TYPES[compression]
        if not is_plain_tar(blob) or compression == "none":
            return blob
        found = self.packed_form(blob.diff_id)
        if found is not None and found.media_type == want:
            return replace(blob, descriptor=found, diff_size=blob.descriptor.size)
        if not make:
            return blob
        from dlenv.oci.layer import compress_layer  # tarfile and isal: only when packing

        source = self.blob_path(blob.descriptor.digest)
        with self.writer() as f, contextlib.ExitStack() as stack:
            try:
                tar = stack.enter_context(source.open("rb"))
            except FileNotFoundError:
                raise IntegrityError(f"store blob {blob.descriptor.digest} is missing",
                                     fix="build again") from None
            packed = compress_layer(tar, f, compression, blob.name)
            if packed.diff_id != blob.diff_id:
                source.unlink(missing_ok=True)
                raise IntegrityError(f"store blob {blob.descriptor.digest} is damaged and "
                                     "was removed", fix="build again")
            self.commit(f, packed.descriptor.digest, packed.diff_id, packed.diff_size)
        ensure_dir(self.packs, "the image store")
        write_atomic(self.packs / blob.diff_id[7:], canonical_json(packed.descriptor.to_json()))
        return packed

    # --- verification -------------------------------------------------------------------
    def _stamp_path(self, digest: str) -> Path:
        return self.stamps / digest.split(":", 1)[1]

    def _stamp(self, digest: str, diff_id: str | None = None, diff_size: int = 0) -> None:
        st = self.blob_path(digest).stat()
        self._hashed.add(digest)
        write_atomic(self._stamp_path(digest), canonical_json(
            {"size": st.st_size, "ino": st.st_ino, "mtime_ns": st.st_mtime_ns,
             "diff_id": diff_id, "diff_size": diff_size}))

    def _read_stamp(self, digest: str) -> dict[str, Any]:
        try:
            data = json.loads(self._stamp_path(digest).read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def check(self, digest: str, size: int, diff_id: str | None = None) -> bool:
        """Whether the blob may be reused as ``digest`` of ``size`` (and, for a layer, of
        ``diff_id``): its size and stamp match, or failing that its full hash does. A
        damaged blob is removed; False also when the stamp names another diff_id."""
        path = self.blob_path(digest)
        try:
            st = path.stat()
        except OSError:
            return False
        if st.st_size != size:
            path.unlink(missing_ok=True)
            return False
        stamp = self._read_stamp(digest)
        if diff_id and stamp.get("diff_id") and stamp["diff_id"] != diff_id:
            return False
        if stamp.get("size") == st.st_size and stamp.get("ino") == st.st_ino \
                and stamp.get("mtime_ns") == st.st_mtime_ns:
            return True
        if not self.verify_blob(digest, force=True):
            return False
        self._stamp(digest, diff_id or stamp.get("diff_id"), self.diff_size(digest))
        return True

    def diff_size(self, digest: str) -> int:
        """The uncompressed length of a layer blob this store built (0: not known, e.g. a
        pulled layer). What it is used for checks it: see ``export.write_docker_archive``."""
        size = self._read_stamp(digest).get("diff_size")
        return size if isinstance(size, int) and size > 0 else 0

    def verify_blob(self, digest: str, *, force: bool = False) -> bool:
        """Whether the blob is there and hashes to ``digest`` (hashed in full, once per
        process unless ``force``); a damaged one is removed."""
        path = self.blob_path(digest)
        if not force and digest in self._hashed:
            return path.exists()
        ok = path.exists() and "sha256:" + sha256_file(path) == digest
        if ok:
            self._hashed.add(digest)
        else:
            self._hashed.discard(digest)
            if path.exists():
                path.unlink()
        return ok

    def verified_blobs(self, manifest: Descriptor, *, held: int = 0) -> list[str]:
        """The manifest's blobs (manifest, config, layers but the first ``held``, which the
        receiver has), each hashed in full: what leaves the store is never a damaged file.
        ``IntegrityError`` names a bad one (removed)."""
        doc = self.read_json(manifest.digest)
        digests = [manifest.digest, doc["config"]["digest"],
                   *(x["digest"] for x in doc["layers"][held:])]
        for digest in digests:
            if not self.verify_blob(digest):
                raise IntegrityError(f"store blob {digest} is missing or damaged and was removed",
                                     fix="build again: the layer is made anew")
        return digests

    def read_json(self, digest: str) -> dict[str, Any]:
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise IntegrityError(f"store blob {digest} is missing", fix="build again") from None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            path.unlink(missing_ok=True)
            raise IntegrityError(f"store blob {digest} is damaged and was removed",
                                 fix="build again")
        loaded: dict[str, Any] = json.loads(data)
        return loaded

    # --- index --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.root / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_index(self) -> list[dict[str, Any]]:
        """The tags; a damaged index.json reads as no tags (the next tag rewrites it, and
        the blobs are still there for builds to reuse)."""
        try:
            data = json.loads((self.root / "index.json").read_bytes())
            manifests = data["manifests"]
            if all(isinstance(m, dict) and isinstance(m.get("digest"), str)
                   and isinstance(m.get("annotations", {}), dict) for m in manifests):
                return list(manifests)
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return []

    def _write_index(self, manifests: list[dict[str, Any]]) -> None:
        doc = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}
        write_atomic(self.root / "index.json", canonical_json(doc))

    def tag(self, name: str, manifest: Descriptor, project: str = "", pack: str = "") -> None:
        """Point ``name`` at a manifest whose blobs are all present; ``project``: the
        directory it was built for (``gc`` drops the tag once that directory is gone);
        ``pack``: the compression its plain tar layers get when it leaves the machine (see
        ``packed_image``)."""
        doc = self.read_json(manifest.digest)
        for blob in [doc["config"], *doc["layers"]]:
            if not self.has(blob["digest"]):
                raise BuildError(f"cannot tag {name}: blob {blob['digest']} is missing")
        entry = Descriptor(media_type=MT_MANIFEST, digest=manifest.digest,
                           size=manifest.size, annotations={
                               REF_ANNOTATION: name,
                               **({PROJECT_ANNOTATION: project} if project else {}),
                               **({PACK_ANNOTATION: pack} if pack else {})}).to_json()
        if entry in self._read_index():
            return  # already so: an unchanged build rewrites nothing
        with self._locked():
            entries = [m for m in self._read_index()
                       if m.get("annotations", {}).get(REF_ANNOTATION) != name]
            entries.append(entry)
            entries.sort(key=lambda m: m["annotations"][REF_ANNOTATION])
            self._write_index(entries)

    def packed_image(self, manifest: Descriptor) -> Descriptor:
        """The image ``manifest`` (as ``resolve`` gives it) with its plain tar layers
        compressed as its tag asks, and every tag that named it moved to it: the manifest a
        build that compressed at once writes. Itself when its tag asks for nothing."""
        compression = manifest.annotations.get(PACK_ANNOTATION, "")
        if compression not in LAYER_MEDIA_TYPES:
            return manifest
        from dlenv.oci.image import manifest_json

        doc = self.read_json(manifest.digest)
        diff_ids = self.read_json(doc["config"]["digest"])["rootfs"]["diff_ids"]
        # One layer at a time: each keeps both cores busy (its hash, isal's threads); two
        # at once measured no faster (a CUDA image's 5 GB: 10.7 s against 11.1 s).
        layers = [self.pack(LayerBlob(descriptor=Descriptor.from_json(x), diff_id=d),
                            compression).descriptor
                  for x, d in zip(doc["layers"], diff_ids, strict=True)]
        packed = self.put_bytes(manifest_json(Descriptor.from_json(doc["config"]), layers,
                                              doc.get("annotations", {})), MT_MANIFEST)
        with self._locked():
            entries = self._read_index()
            for m in entries:
                if m["digest"] == manifest.digest and PACK_ANNOTATION in m.get("annotations", {}):
                    m.update(digest=packed.digest, size=packed.size)
                    del m["annotations"][PACK_ANNOTATION]
            self._write_index(entries)
        return packed

    def resolve(self, name: str) -> Descriptor | None:
        for m in self._read_index():
            if m.get("annotations", {}).get(REF_ANNOTATION) == name or m["digest"] == name:
                return Descriptor.from_json(m)
        return None

    def tags(self) -> dict[str, str]:
        return {m["annotations"][REF_ANNOTATION]: m["digest"] for m in self._read_index()
                if REF_ANNOTATION in m.get("annotations", {})}

    def projects(self) -> dict[str, str]:
        """Each tag's project directory, for the tags built for one."""
        return {m["annotations"][REF_ANNOTATION]: m["annotations"][PROJECT_ANNOTATION]
                for m in self._read_index()
                if {REF_ANNOTATION, PROJECT_ANNOTATION} <= m.get("annotations", {}).keys()}

    def untag(self, names: set[str]) -> None:
        with self._locked():
            self._write_index([m for m in self._read_index()
                               if m.get("annotations", {}).get(REF_ANNOTATION) not in names])

    def gc(self, *, dry_run: bool = False, without: frozenset[str] = frozenset()
           ) -> dict[str, int]:
        """Remove blobs and temporary files no tag reaches (tags in ``without`` counting as
        gone); what was (or, with ``dry_run``, would be) removed, with sizes."""
        with self._locked():
            keep: set[str] = set()
            for m in self._read_index():
                if m.get("annotations", {}).get(REF_ANNOTATION) in without:
                    continue
                keep.add(m["digest"])
                if self.has(m["digest"]):
                    doc = self.read_json(m["digest"])
                    keep |= {doc["config"]["digest"], *(x["digest"] for x in doc["layers"])}
            removed = {} if dry_run else sweep(self.blobs)
            for path in sorted(self.blobs.iterdir()):
                if not path.name.startswith(".") and "sha256:" + path.name not in keep:
                    removed[path.name] = path.stat().st_size
                    if not dry_run:
                        path.unlink(missing_ok=True)
                        self._stamp_path("sha256:" + path.name).unlink(missing_ok=True)
            for memo in [] if dry_run or not self.packs.is_dir() else self.packs.iterdir():
                if self.packed_form("sha256:" + memo.name) is None:  # its blob went
                    memo.unlink(missing_ok=True)
            return removed


def default_store(cache_dir: str | os.PathLike[str] | None = None) -> OCIStore:
    """The image store below the cache directory (default: ``default_cache_dir()``)."""
    return OCIStore(default_cache_dir(cache_dir) / "store")
