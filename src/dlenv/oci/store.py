"""The local image store: an OCI image layout, safe against a build killed at any point.

Blobs are written under a temporary name, fsynced and renamed to their digest, so a blob
name always holds exactly that content. ``index.json`` is replaced atomically under a lock,
and only after every blob it names exists; garbage collection removes what no tag reaches.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from dlenv.errors import BuildError, IntegrityError
from dlenv.lock import write_atomic
from dlenv.oci import MT_INDEX, MT_MANIFEST, Descriptor, canonical_json

REF_ANNOTATION = "org.opencontainers.image.ref.name"


class OCIStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
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
        if not self.has(digest):
            write_atomic(self.blob_path(digest), data)
        return Descriptor(media_type=media_type, digest=digest, size=len(data))

    @contextlib.contextmanager
    def writer(self) -> Iterator[IO[bytes]]:
        """A temporary blob file; ``commit`` it under its digest once its content is known."""
        fd, name = tempfile.mkstemp(dir=self.blobs, prefix=".tmp-", suffix=".part")
        os.close(fd)
        f = open(name, "w+b")  # noqa: SIM115 - closed in the finally below
        try:
            yield f
        finally:
            f.close()
            Path(name).unlink(missing_ok=True)

    def commit(self, f: IO[bytes], digest: str) -> None:
        f.flush()
        os.fsync(f.fileno())
        os.replace(f.name, self.blob_path(digest))

    def read_json(self, digest: str) -> dict[str, Any]:
        path = self.blob_path(digest)
        data = path.read_bytes()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            path.unlink(missing_ok=True)
            raise IntegrityError(f"store blob {digest} is damaged and was removed",
                                 fix="build again")
        loaded: dict[str, Any] = json.loads(data)
        return loaded

    def verify_blob(self, digest: str) -> bool:
        from dlenv.cache import sha256_file

        path = self.blob_path(digest)
        ok = path.exists() and "sha256:" + sha256_file(path) == digest
        if path.exists() and not ok:
            path.unlink()
        return ok

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
        data = json.loads((self.root / "index.json").read_text())
        manifests: list[dict[str, Any]] = data.get("manifests", [])
        return manifests

    def _write_index(self, manifests: list[dict[str, Any]]) -> None:
        doc = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}
        write_atomic(self.root / "index.json", canonical_json(doc))

    def tag(self, name: str, manifest: Descriptor) -> None:
        """Point ``name`` at a manifest whose blobs are all present."""
        doc = self.read_json(manifest.digest)
        for blob in [doc["config"], *doc["layers"]]:
            if not self.has(blob["digest"]):
                raise BuildError(f"cannot tag {name}: blob {blob['digest']} is missing")
        with self._locked():
            entries = [m for m in self._read_index()
                       if m.get("annotations", {}).get(REF_ANNOTATION) != name]
            entry = Descriptor(media_type=MT_MANIFEST, digest=manifest.digest,
                               size=manifest.size, annotations={REF_ANNOTATION: name})
            entries.append(entry.to_json())
            entries.sort(key=lambda m: m["annotations"][REF_ANNOTATION])
            self._write_index(entries)

    def resolve(self, name: str) -> Descriptor | None:
        for m in self._read_index():
            if m.get("annotations", {}).get(REF_ANNOTATION) == name or m["digest"] == name:
                return Descriptor.from_json(m)
        return None

    def tags(self) -> dict[str, str]:
        return {m["annotations"][REF_ANNOTATION]: m["digest"] for m in self._read_index()
                if REF_ANNOTATION in m.get("annotations", {})}

    def gc(self) -> list[str]:
        """Remove blobs and temporary files no tag reaches; return what was removed."""
        with self._locked():
            keep: set[str] = set()
            for m in self._read_index():
                keep.add(m["digest"])
                if self.has(m["digest"]):
                    doc = self.read_json(m["digest"])
                    keep |= {doc["config"]["digest"], *(x["digest"] for x in doc["layers"])}
            removed = []
            for path in self.blobs.iterdir():
                if path.name.startswith(".tmp-") or "sha256:" + path.name not in keep:
                    path.unlink(missing_ok=True)
                    removed.append(path.name)
            return removed
